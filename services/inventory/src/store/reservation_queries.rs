//! Reservations of orders' lines, their settlement, and orders cancelled before we saw them.

use super::{ReservationStatus, Scope, cancelled_orders, find_product, products, reservations};
use contracts::events::{ReservedLine, StockRejectionReason};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// Remembers that `order_id` was cancelled, so a late `order.created` reserves nothing.
pub async fn remember_cancellation(conn: &mut AsyncPgConnection, order_id: Uuid) -> QueryResult<()> {
    diesel::insert_into(cancelled_orders::table)
        .values(cancelled_orders::order_id.eq(order_id))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(())
}

/// What inventory already knows of an order, in one round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderSeen {
    /// Cancelled before its `order.created` arrived.
    pub cancelled: bool,
    /// Already has a reservation (a repeated `order.created`).
    pub reserved: bool,
}

pub async fn order_seen(conn: &mut AsyncPgConnection, order_id: Uuid) -> QueryResult<OrderSeen> {
    let (cancelled, reserved) = diesel::select((
        diesel::dsl::exists(cancelled_orders::table.find(order_id)),
        diesel::dsl::exists(reservations::table.filter(reservations::order_id.eq(order_id))),
    ))
    .get_result::<(bool, bool)>(conn)
    .await?;
    Ok(OrderSeen { cancelled, reserved })
}

#[derive(Debug, thiserror::Error)]
pub enum ReserveError {
    #[error("cannot reserve {product_id}: {reason:?}")]
    Rejected { reason: StockRejectionReason, product_id: Uuid },
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// Reserves every line or none. Each line is one conditional UPDATE (`on_hand - reserved >= q`),
/// so stock can never be oversold whatever runs concurrently; a savepoint undoes the lines
/// already reserved when a later one cannot be. A single line needs none (two statements
/// saved per order): its refused UPDATE changed nothing, and nothing was written before it.
/// A soft-deleted product is an unknown one. `lines` must be sorted by product id.
pub async fn reserve_all(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
    lines: &[ReservedLine],
) -> Result<(), ReserveError> {
    if lines.len() <= 1 {
        return reserve_lines(conn, order_id, lines).await;
    }
    conn.transaction(async |conn: &mut AsyncPgConnection| reserve_lines(conn, order_id, lines).await).await
}

async fn reserve_lines(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
    lines: &[ReservedLine],
) -> Result<(), ReserveError> {
    for line in lines {
        let quantity = i64::from(line.quantity);
        let updated = diesel::update(
            products::table
                .filter(products::id.eq(line.product_id))
                .filter(products::deleted_at.is_null())
                .filter((products::on_hand - products::reserved).ge(quantity)),
        )
        .set((
            products::reserved.eq(products::reserved + quantity),
            products::version.eq(products::version + 1),
            products::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
        if updated == 0 {
            let exists = find_product(conn, line.product_id, Scope::Active).await?.is_some();
            let reason = if exists {
                StockRejectionReason::InsufficientStock
            } else {
                StockRejectionReason::UnknownProduct
            };
            return Err(ReserveError::Rejected { reason, product_id: line.product_id });
        }
        diesel::insert_into(reservations::table)
            .values((
                reservations::order_id.eq(order_id),
                reservations::product_id.eq(line.product_id),
                reservations::quantity.eq(quantity),
                reservations::status.eq(ReservationStatus::Reserved),
            ))
            .execute(conn)
            .await?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// The order is confirmed: the reserved units leave stock for good.
    Commit,
    /// The order failed or was cancelled: the reserved units become available again.
    Release,
}

/// Puts the units of a confirmed-then-cancelled order back on hand; returns the lines returned.
pub async fn restock_committed(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
) -> QueryResult<Vec<ReservedLine>> {
    let committed: Vec<(Uuid, i64)> = reservations::table
        .filter(reservations::order_id.eq(order_id))
        .filter(reservations::status.eq(ReservationStatus::Committed))
        .select((reservations::product_id, reservations::quantity))
        .order(reservations::product_id)
        .for_update()
        .load(conn)
        .await?;
    for (product_id, quantity) in &committed {
        diesel::update(products::table.find(*product_id))
            .set((
                products::on_hand.eq(products::on_hand + *quantity),
                products::version.eq(products::version + 1),
                products::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await?;
    }
    diesel::update(
        reservations::table
            .filter(reservations::order_id.eq(order_id))
            .filter(reservations::status.eq(ReservationStatus::Committed)),
    )
    .set((
        reservations::status.eq(ReservationStatus::Returned),
        reservations::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await?;
    Ok(committed
        .into_iter()
        .map(|(product_id, quantity)| ReservedLine {
            product_id,
            quantity: u32::try_from(quantity).unwrap_or(u32::MAX),
        })
        .collect())
}

/// Settles the open reservation of `order_id`; returns the lines settled (empty when there was
/// nothing open, e.g. a rejected order or a repeated event).
pub async fn settle(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
    settlement: Settlement,
) -> QueryResult<Vec<ReservedLine>> {
    let open: Vec<(Uuid, i64)> = reservations::table
        .filter(reservations::order_id.eq(order_id))
        .filter(reservations::status.eq(ReservationStatus::Reserved))
        .select((reservations::product_id, reservations::quantity))
        .order(reservations::product_id)
        .for_update()
        .load(conn)
        .await?;
    for (product_id, quantity) in &open {
        let target = products::table.find(*product_id);
        let common = (
            products::reserved.eq(products::reserved - *quantity),
            products::version.eq(products::version + 1),
            products::updated_at.eq(diesel::dsl::now),
        );
        match settlement {
            Settlement::Commit => {
                diesel::update(target)
                    .set((products::on_hand.eq(products::on_hand - *quantity), common))
                    .execute(conn)
                    .await?
            }
            Settlement::Release => diesel::update(target).set(common).execute(conn).await?,
        };
    }
    let status = match settlement {
        Settlement::Commit => ReservationStatus::Committed,
        Settlement::Release => ReservationStatus::Released,
    };
    diesel::update(
        reservations::table
            .filter(reservations::order_id.eq(order_id))
            .filter(reservations::status.eq(ReservationStatus::Reserved)),
    )
    .set((reservations::status.eq(status), reservations::updated_at.eq(diesel::dsl::now)))
    .execute(conn)
    .await?;
    Ok(open
        .into_iter()
        .map(|(product_id, quantity)| ReservedLine {
            product_id,
            quantity: u32::try_from(quantity).unwrap_or(u32::MAX),
        })
        .collect())
}
