//! Inventory rules, free of SQL and HTTP: what a valid product, product change and stock
//! adjustment are, and how an order's lines become a reservation request.

mod product;
mod stock;

pub use product::*;
pub use stock::*;

use contracts::events::{OrderLine, ReservedLine};
use std::collections::BTreeMap;

/// Lines to reserve, one per product (quantities of repeated products added) and sorted by
/// product id: every transaction locks products in the same order, so two orders over the same
/// products never deadlock.
pub fn reservation_lines(lines: &[OrderLine]) -> Vec<ReservedLine> {
    let mut merged: BTreeMap<uuid::Uuid, u32> = BTreeMap::new();
    for line in lines {
        *merged.entry(line.product_id).or_default() += line.quantity;
    }
    merged.into_iter().map(|(product_id, quantity)| ReservedLine { product_id, quantity }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use contracts::Amount;

    #[test]
    fn reservation_lines_are_merged_and_sorted_by_product() {
        let (a, b) = (uuid::Uuid::from_u128(2), uuid::Uuid::from_u128(1));
        let line = |product_id, quantity| OrderLine {
            product_id,
            product_name: "p".into(),
            quantity,
            unit_price: Amount::zero(),
            subtotal: Amount::zero(),
        };
        let lines = reservation_lines(&[line(a, 1), line(b, 2), line(a, 3)]);
        assert_eq!(
            lines,
            vec![ReservedLine { product_id: b, quantity: 2 }, ReservedLine { product_id: a, quantity: 4 }]
        );
    }
}
