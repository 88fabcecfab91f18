//! Order use cases, callable without HTTP: place an order, read one, list them.

use crate::SERVICE;
use crate::domain::access::{Access, can_cancel, can_read};
use crate::domain::new_order::{CreateOrderRequest, Limits, NewOrder};
use crate::domain::status::{OrderStatus, Trigger};
use crate::store::{self, OrderFilter, OrderRow};
use chrono::{DateTime, Utc};
use contracts::events::{CancelledBy, OrderCancelled, OrderCreated};
use contracts::{Amount, Currency, Event};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use messaging::outbox;
use platform::auth::{Claims, Role};
use platform::problem::FieldError;
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("invalid order")]
    Invalid(Vec<FieldError>),
    #[error("no such order")]
    NotFound,
    #[error("log in to see this order")]
    Unauthenticated,
    #[error("the order is {current}; {attempted} is not possible")]
    Conflict { current: OrderStatus, attempted: &'static str },
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// Cancels the order if its state allows (`pending`, `processing`, `confirmed`), with its
/// `order.cancelled` event: inventory releases or restocks, payment voids or refunds.
pub async fn cancel(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    caller: &Claims,
) -> Result<OrderView, OrderError> {
    let by = if caller.role == Role::Admin { CancelledBy::Admin } else { CancelledBy::Customer };
    conn.transaction(async |conn: &mut AsyncPgConnection| {
        let order = store::lock_order(conn, id).await?.ok_or(OrderError::NotFound)?;
        check(can_cancel(order.customer_id, Some(caller)))?;
        let from = order.status()?;
        let to = from
            .next(Trigger::Cancel)
            .map_err(|_| OrderError::Conflict { current: from, attempted: "cancel" })?;
        let cause = match by {
            CancelledBy::Customer => "customer",
            CancelledBy::Admin => "admin",
            CancelledBy::System => "system",
        };
        store::set_status(conn, id, to, None, cause).await?;
        let items = store::items_of(conn, id).await?;
        let cancelled = OrderCancelled {
            order_id: id,
            customer: order.customer(),
            previous_status: from.as_str().to_owned(),
            cancelled_by: by,
            currency: Currency::from_db(order.currency.clone()),
            total_amount: Amount::from_db(order.total_amount.clone()),
            lines: items.iter().map(store::ItemRow::to_reserved_line).collect(),
        };
        outbox::enqueue(conn, SERVICE, &Event::OrderCancelled(cancelled)).await?;
        Ok::<_, OrderError>(())
    })
    .await?;
    metrics::counter!("orders_cancelled_total").increment(1);
    find(conn, id).await?.ok_or(OrderError::NotFound)
}

/// The moves an admin makes by hand after confirmation.
#[derive(Debug, Clone, Copy, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ManualStatus {
    Shipped,
    Delivered,
}

pub async fn set_manual_status(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    target: ManualStatus,
) -> Result<OrderView, OrderError> {
    let (trigger, attempted) = match target {
        ManualStatus::Shipped => (Trigger::Ship, "ship"),
        ManualStatus::Delivered => (Trigger::Deliver, "deliver"),
    };
    conn.transaction(async |conn: &mut AsyncPgConnection| {
        let order = store::lock_order(conn, id).await?.ok_or(OrderError::NotFound)?;
        let from = order.status()?;
        let to = from.next(trigger).map_err(|_| OrderError::Conflict { current: from, attempted })?;
        store::set_status(conn, id, to, None, "admin").await?;
        Ok::<_, OrderError>(())
    })
    .await?;
    find(conn, id).await?.ok_or(OrderError::NotFound)
}

/// Validates, prices from the catalog read model, and stores the order as `pending` together
/// with its `order.created` event. Needs only this service's database: RabbitMQ and the other
/// services may all be down.
pub async fn place(
    conn: &mut AsyncPgConnection,
    mut request: CreateOrderRequest,
    limits: Limits,
    caller: Option<&Claims>,
) -> Result<OrderView, OrderError> {
    if let Some(account) = caller {
        request.fill_from_account(&account.name, &account.email);
    }
    let errors = request.check_shape(limits);
    if !errors.is_empty() {
        return Err(OrderError::Invalid(errors));
    }
    let catalog = store::catalog_entries(conn, &request.product_ids()).await?;
    let order: NewOrder =
        request.price(&catalog, caller.map(|account| account.sub)).map_err(OrderError::Invalid)?;
    conn.transaction(async |conn: &mut AsyncPgConnection| {
        store::insert_order(conn, &order).await?;
        let created = OrderCreated {
            order_id: order.id,
            customer: order.customer.clone(),
            currency: order.currency.clone(),
            lines: order.lines.clone(),
            total_amount: order.total_amount.clone(),
            payment_method: order.payment_method.clone(),
        };
        outbox::enqueue(conn, SERVICE, &Event::OrderCreated(created)).await?;
        Ok::<_, OrderError>(())
    })
    .await?;
    metrics::counter!("orders_placed_total").increment(1);
    find(conn, order.id).await?.ok_or(OrderError::Db(diesel::result::Error::NotFound))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemView {
    pub product_id: Uuid,
    pub product_name: String,
    pub quantity: i32,
    #[schema(value_type = String, example = "999.99")]
    pub price_at_purchase: Amount,
    #[schema(value_type = String, example = "1999.98")]
    pub subtotal: Amount,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryView {
    pub status: String,
    pub at: DateTime<Utc>,
    pub reason: Option<String>,
    pub caused_by: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderView {
    pub id: Uuid,
    pub status: String,
    pub failure_reason: Option<String>,
    pub customer_name: String,
    pub customer_email: String,
    pub customer_phone: Option<String>,
    #[schema(value_type = String, example = "USD")]
    pub currency: Currency,
    pub payment_method: String,
    pub items: Vec<ItemView>,
    #[schema(value_type = String, example = "1999.98")]
    pub total_amount: Amount,
    pub status_history: Vec<HistoryView>,
    pub invoice_sent: bool,
    pub webhook_sent: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn check(access: Access) -> Result<(), OrderError> {
    match access {
        Access::Allowed => Ok(()),
        Access::Unauthenticated => Err(OrderError::Unauthenticated),
        Access::Hidden => Err(OrderError::NotFound),
    }
}

/// The order, if `caller` may see it.
pub async fn find_for(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    caller: Option<&Claims>,
) -> Result<OrderView, OrderError> {
    let order = store::find_order(conn, id).await?.ok_or(OrderError::NotFound)?;
    check(can_read(order.customer_id, caller))?;
    find(conn, id).await?.ok_or(OrderError::NotFound)
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<OrderView>, OrderError> {
    let Some(order) = store::find_order(conn, id).await? else {
        return Ok(None);
    };
    let items = store::items_of(conn, id).await?;
    let history = store::history_of(conn, id).await?;
    Ok(Some(view(order, items, history)))
}

fn view(order: OrderRow, items: Vec<store::ItemRow>, history: Vec<store::HistoryRow>) -> OrderView {
    OrderView {
        id: order.id,
        status: order.status,
        failure_reason: order.failure_reason,
        customer_name: order.customer_name,
        customer_email: order.customer_email,
        customer_phone: order.customer_phone,
        currency: Currency::from_db(order.currency),
        payment_method: order.payment_method,
        items: items
            .into_iter()
            .map(|item| ItemView {
                product_id: item.product_id,
                product_name: item.product_name,
                quantity: item.quantity,
                price_at_purchase: Amount::from_db(item.price_at_purchase),
                subtotal: Amount::from_db(item.subtotal),
            })
            .collect(),
        total_amount: Amount::from_db(order.total_amount),
        status_history: history
            .into_iter()
            .map(|entry| HistoryView {
                status: entry.status,
                at: entry.at,
                reason: entry.reason,
                caused_by: entry.caused_by,
            })
            .collect(),
        invoice_sent: order.invoice_sent,
        webhook_sent: order.webhook_sent,
        created_at: order.created_at,
        updated_at: order.updated_at,
    }
}

/// A page of orders; pass `next_cursor` as `starting_after` for the next one (null: the end).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page {
    pub items: Vec<OrderView>,
    pub next_cursor: Option<Uuid>,
}

pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &OrderFilter,
    limit: i64,
) -> Result<Page, OrderError> {
    let rows = store::list_orders(conn, filter, limit).await?;
    let next_cursor = if rows.len() as i64 == limit { rows.last().map(|row| row.id) } else { None };
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let items_of = store::items_of(conn, row.id).await?;
        let history = store::history_of(conn, row.id).await?;
        items.push(view(row, items_of, history));
    }
    Ok(Page { items, next_cursor })
}

pub fn parse_status(raw: &str) -> Result<OrderStatus, FieldError> {
    raw.parse().map_err(|e: String| FieldError::new("status", e))
}
