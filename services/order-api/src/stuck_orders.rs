//! Orders stuck in the saga (`pending` or `processing` past their deadline), for operators:
//! list them, re-drive the current step, or fail them.
//!
//! Re-driving is safe because the consumers are idempotent on their business keys, not only on
//! the event id (a re-drive is a new event): inventory ignores `order.created` for an order that
//! already has a reservation (`inventory::handlers`, `store::has_reservation`), payment ignores
//! `payment.requested` for an order that already has a payment (`payments.order_id` is unique,
//! `payment::lifecycle::request`).

use crate::OUTBOX;
use crate::domain::status::{OrderStatus, Transitions, Trigger};
use crate::orders::{self, OrderError, OrderView};
use crate::store::{self, ItemRow};
use chrono::{DateTime, Utc};
use contracts::events::{FailureReason, OrderCreated, OrderFailed, PaymentRequested};
use contracts::{Amount, Currency, Event};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use uuid::Uuid;

/// What `orders.failure_reason`, the status history and `order.failed` say about an order an
/// operator expired: one reason from the contract's enum, everywhere.
pub const EXPIRED: FailureReason = FailureReason::Expired;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StuckOrder {
    pub id: Uuid,
    pub status: String,
    pub customer_email: String,
    pub created_at: DateTime<Utc>,
    /// The last status change.
    pub since: DateTime<Utc>,
    pub age_seconds: i64,
}

#[derive(Queryable)]
struct StuckRow {
    id: Uuid,
    status: String,
    customer_email: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// Orders in `pending` or `processing` whose last status change is older than `older_than`,
/// oldest first.
pub async fn list(
    conn: &mut AsyncPgConnection,
    older_than_seconds: i64,
    limit: i64,
) -> QueryResult<Vec<StuckOrder>> {
    use crate::store::orders::dsl as o;
    let cutoff = Utc::now() - chrono::Duration::seconds(older_than_seconds);
    let rows: Vec<StuckRow> = o::orders
        .filter(o::status.eq_any([OrderStatus::Pending, OrderStatus::Processing]))
        .filter(o::updated_at.lt(cutoff))
        .order(o::updated_at)
        .limit(limit)
        .select((o::id, o::status, o::customer_email, o::created_at, o::updated_at))
        .load(conn)
        .await?;
    let now = Utc::now();
    Ok(rows
        .into_iter()
        .map(|row| StuckOrder {
            id: row.id,
            status: row.status,
            customer_email: row.customer_email,
            created_at: row.created_at,
            since: row.updated_at,
            age_seconds: (now - row.updated_at).num_seconds(),
        })
        .collect())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Redriven {
    pub order_id: Uuid,
    pub status: String,
    /// The event enqueued again (with a new id): `order.created` or `payment.requested`.
    pub event_type: String,
    pub event_id: Uuid,
}

/// Enqueues the event of the order's current step again, through the outbox.
pub async fn redrive(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Redriven, OrderError> {
    conn.transaction(async |conn: &mut AsyncPgConnection| {
        let order = store::lock_order(conn, id).await?.ok_or(OrderError::NotFound)?;
        let status = order.status;
        let event = match status {
            OrderStatus::Pending => {
                let items = store::items_of(conn, id).await?;
                Event::OrderCreated(OrderCreated {
                    order_id: id,
                    customer: order.customer(),
                    currency: Currency::from_db(order.currency.clone()),
                    lines: items.iter().map(ItemRow::to_line).collect(),
                    total_amount: Amount::from_db(order.total_amount.clone()),
                    payment_method: order.payment_method.clone(),
                })
            }
            OrderStatus::Processing => Event::PaymentRequested(PaymentRequested {
                order_id: id,
                amount: Amount::from_db(order.total_amount.clone()),
                currency: Currency::from_db(order.currency.clone()),
                payment_method: order.payment_method.clone(),
                customer_id: order.customer_id,
            }),
            OrderStatus::Confirmed
            | OrderStatus::Failed
            | OrderStatus::Cancelled
            | OrderStatus::Shipped
            | OrderStatus::Delivered => {
                return Err(OrderError::Conflict { current: status, attempted: "be re-driven" });
            }
        };
        let envelope = OUTBOX.enqueue(conn, &event).await?;
        tracing::info!(order_id = %id, event_id = %envelope.id, event_type = %envelope.event_type, "order re-driven");
        metrics::counter!("orders_redriven_total", "status" => status.as_str()).increment(1);
        Ok(Redriven {
            order_id: id,
            status: status.as_str().to_owned(),
            event_type: envelope.event_type.clone(),
            event_id: envelope.id,
        })
    })
    .await
}

/// Fails an order stuck in the saga: `failed` with reason `expired` (plus the operator's note in
/// the history), and `order.failed` so inventory releases what it reserved, payment voids the
/// open payment (or refunds it, should the customer still complete it) and the customer is
/// told.
pub async fn expire(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    note: Option<&str>,
) -> Result<OrderView, OrderError> {
    conn.transaction(async |conn: &mut AsyncPgConnection| {
        let order = store::lock_order(conn, id).await?.ok_or(OrderError::NotFound)?;
        let from = order.status;
        let to = from
            .next(Trigger::Expire)
            .map_err(|_| OrderError::Conflict { current: from, attempted: "expire" })?;
        let cause = match note.map(str::trim).filter(|n| !n.is_empty()) {
            Some(note) => format!("admin: {note}"),
            None => "admin".to_owned(),
        };
        store::set_status(conn, id, to, Some(EXPIRED), &cause).await?;
        let items = store::items_of(conn, id).await?;
        let failed = OrderFailed {
            order_id: id,
            customer: order.customer(),
            reason: EXPIRED,
            lines: items.iter().map(store::ItemRow::to_reserved_line).collect(),
        };
        OUTBOX.enqueue(conn, &Event::OrderFailed(failed)).await?;
        Ok::<_, OrderError>(())
    })
    .await?;
    metrics::counter!("orders_expired_total").increment(1);
    orders::find(conn, id).await?.ok_or(OrderError::NotFound)
}
