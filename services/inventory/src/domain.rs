//! Inventory rules, free of SQL and HTTP: what a valid product is, and how an order's lines
//! become a reservation request.

use contracts::events::{OrderLine, ReservedLine};
use contracts::{Amount, Currency};
use platform::problem::FieldError;
use serde::Deserialize;
use std::collections::BTreeMap;

pub const MAX_STOCK: i64 = 1_000_000_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateProductRequest {
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    pub price: String,
    pub currency: String,
    pub stock: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewProduct {
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    pub price: Amount,
    pub currency: Currency,
    pub stock: i64,
}

impl TryFrom<CreateProductRequest> for NewProduct {
    type Error = Vec<FieldError>;

    fn try_from(request: CreateProductRequest) -> Result<Self, Self::Error> {
        let mut errors = Vec::new();
        let sku = request.sku.trim().to_owned();
        if sku.is_empty()
            || sku.len() > 64
            || !sku.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            errors.push(FieldError::new("sku", "1 to 64 letters, digits, '-', '_' or '.'"));
        }
        let name = request.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 200 {
            errors.push(FieldError::new("name", "must be 1 to 200 characters"));
        }
        let description = request.description.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty());
        if description.as_ref().is_some_and(|d| d.chars().count() > 2000) {
            errors.push(FieldError::new("description", "must be at most 2000 characters"));
        }
        let price = request
            .price
            .parse::<Amount>()
            .map_err(|e| errors.push(FieldError::new("price", e.to_string())))
            .ok();
        let currency = request
            .currency
            .parse::<Currency>()
            .map_err(|e| errors.push(FieldError::new("currency", e.to_string())))
            .ok();
        if !(0..=MAX_STOCK).contains(&request.stock) {
            errors.push(FieldError::new("stock", format!("must be between 0 and {MAX_STOCK}")));
        }
        match (price, currency) {
            (Some(price), Some(currency)) if errors.is_empty() => {
                Ok(Self { sku, name, description, price, currency, stock: request.stock })
            }
            _ => Err(errors),
        }
    }
}

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

    fn request() -> CreateProductRequest {
        CreateProductRequest {
            sku: "LAPTOP-1".into(),
            name: "Laptop".into(),
            description: None,
            price: "999.99".into(),
            currency: "USD".into(),
            stock: 50,
        }
    }

    #[test]
    fn a_valid_product_is_accepted() {
        let product = NewProduct::try_from(request()).map_err(|e| format!("{e:?}"));
        assert_eq!(product.map(|p| p.price.to_string()), Ok("999.99".into()));
    }

    #[test]
    fn every_bad_field_is_named() {
        let bad = CreateProductRequest {
            sku: "has space".into(),
            name: " ".into(),
            description: Some("x".repeat(2001)),
            price: "-1".into(),
            currency: "usd".into(),
            stock: -5,
        };
        let errors = NewProduct::try_from(bad).err().unwrap_or_default();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["sku", "name", "description", "price", "currency", "stock"]);
    }

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
