//! Order use cases, callable without HTTP: place an order, read one, list them.

use crate::OUTBOX;
use crate::domain::access::{Access, can_cancel, can_read};
use crate::domain::access_token;
use crate::domain::new_order::{CreateOrderRequest, Limits, NewOrder};
use crate::domain::status::{OrderStatus, Transitions, Trigger};
use crate::store::{self, OpenOrdersOf, OrderFilter, OrderRow, TokenPurpose};
use chrono::{DateTime, Utc};
use contracts::events::{CancelledBy, FailureReason, OrderCancelled, OrderCreated};
use contracts::{Amount, Currency, Event};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use platform::auth::{Claims, Role};
use platform::validation::Violation;
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("invalid order")]
    Invalid(Vec<Violation>),
    #[error("no such order")]
    NotFound,
    #[error("{open} unpaid orders are open; the limit is {limit}")]
    TooManyOpenOrders { open: i64, limit: i64 },
    #[error("the order is {current}; {attempted} is not possible")]
    Conflict { current: OrderStatus, attempted: &'static str },
    /// The order asked for another currency and its prices cannot be converted.
    #[error(transparent)]
    Conversion(#[from] contracts::exchange::ConversionError),
    #[error("no exchange rates are loaded")]
    RatesUnavailable,
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// Cancels the order if its state allows (`pending`, `processing`, `confirmed`), with its
/// `order.cancelled` event: inventory releases or restocks, payment voids or refunds.
pub async fn cancel(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    caller: Option<&Claims>,
    access_token: Option<&str>,
) -> Result<OrderView, OrderError> {
    let admin = caller.is_some_and(|c| c.role == Role::Admin);
    let by = if admin { CancelledBy::Admin } else { CancelledBy::Customer };
    conn.transaction(async |conn: &mut AsyncPgConnection| {
        let order = store::lock_order(conn, id).await?.ok_or(OrderError::NotFound)?;
        let token_matches = token_matches(conn, &order, access_token).await?;
        check(can_cancel(order.customer_id, caller, token_matches))?;
        let from = order.status;
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
            previous_status: from,
            cancelled_by: by,
            currency: Currency::from_db(order.currency.clone()),
            total_amount: Amount::from_db(order.total_amount.clone()),
            lines: items.iter().map(store::ItemRow::to_reserved_line).collect(),
        };
        OUTBOX.enqueue(conn, &Event::OrderCancelled(cancelled)).await?;
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
        let from = order.status;
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
/// How orders are taken from one client, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct Intake {
    pub limits: Limits,
    /// Unpaid orders a client may have open at once; 0: no limit.
    pub max_open_orders: i64,
    /// Exchange rates published more than this many days ago convert nothing; 0: no limit.
    pub rates_max_age_days: u32,
}

/// Who places an order: an account, or a guest known by its client address.
#[derive(Debug, Clone, Copy)]
pub enum Placer<'a> {
    Account(&'a Claims),
    Guest(std::net::IpAddr),
}

/// Places an order. With an idempotency `claim`, the order records it in its own transaction:
/// a retry whose first request committed but never answered (the gateway died in between) gets
/// that order back instead of a second one.
pub async fn place(
    conn: &mut AsyncPgConnection,
    mut request: CreateOrderRequest,
    intake: Intake,
    placer: Placer<'_>,
    claim: Option<&store::IdempotencyClaim>,
) -> Result<OrderView, OrderError> {
    let caller = match placer {
        Placer::Account(claims) => Some(claims),
        Placer::Guest(_) => None,
    };
    let mut errors = Vec::new();
    if let Some(account) = caller {
        // Messages about an account's orders go to the account's own address, never to one typed
        // into the order (that would make us send mail to anyone, from our domain).
        if let Some(given) = &request.customer_email
            && crate::accounts::normalise_email(given) != crate::accounts::normalise_email(&account.email)
        {
            errors.push(Violation::new(
                "customer_email",
                "must be your account's email; leave it out to use it",
            ));
        }
        request.customer_email = Some(account.email.clone());
        request.fill_from_account(&account.name, &account.email);
    }
    errors.extend(request.check_shape(intake.limits));
    if !errors.is_empty() {
        return Err(OrderError::Invalid(errors));
    }
    let catalog = store::catalog_entries(conn, &request.product_ids()).await?;
    let target = request.target_currency();
    let mut order: NewOrder =
        request.price(&catalog, caller.map(|account| account.sub)).map_err(OrderError::Invalid)?;
    if let Some(target) = target.filter(|target| *target != order.currency) {
        let table = crate::rates::current(conn).await?.ok_or(OrderError::RatesUnavailable)?;
        table.check_age(Utc::now().date_naive(), intake.rates_max_age_days)?;
        let locked = table.lock(&order.currency, &target)?;
        order = order.convert(locked).map_err(OrderError::Invalid)?;
    }
    let (client, guest_client) = match placer {
        Placer::Account(claims) => (OpenOrdersOf::Account(claims.sub), None),
        Placer::Guest(address) => (OpenOrdersOf::Guest(address.to_string()), Some(address.to_string())),
    };
    // A guest order is opened by its token alone; only the hash is kept.
    let token = guest_client.is_some().then(access_token::generate);
    // The answer is read inside the transaction: the same snapshot, and no extra autocommitted
    // read-only transactions after the commit (docs/benchmarks.md, Per-order counts).
    let (order_id, mut view) = conn
        .transaction(async |conn: &mut AsyncPgConnection| {
        if let Some(claim) = claim
            && let Some(placed) = store::order_of_idempotency_key(conn, claim).await?
        {
            // The first answer was lost with its request; a guest gets a fresh token (only
            // hashes are kept), which replaces the lost one.
            if let Some((_, hash)) = &token {
                store::save_access_token(conn, placed, TokenPurpose::Created, hash).await?;
            }
            tracing::warn!(order_id = %placed, "an idempotent retry found the order its first request placed");
            return Ok::<_, OrderError>((placed, placed_view(conn, placed).await?));
        }
        if intake.max_open_orders > 0 {
            store::lock_client(conn, &client).await?;
            let open = store::count_open_orders(conn, &client).await?;
            if open >= intake.max_open_orders {
                return Err(OrderError::TooManyOpenOrders { open, limit: intake.max_open_orders });
            }
        }
        store::insert_order(conn, &order, guest_client.as_deref(), claim).await?;
        if let Some(locked) = &order.exchange_rate {
            crate::rates::lock_for_order(conn, order.id, locked).await?;
        }
        if let Some((_, hash)) = &token {
            store::save_access_token(conn, order.id, TokenPurpose::Created, hash).await?;
        }
        let created = OrderCreated {
            order_id: order.id,
            customer: order.customer.clone(),
            currency: order.currency.clone(),
            lines: order.lines.clone(),
            total_amount: order.total_amount.clone(),
            payment_method: order.payment_method.clone(),
        };
        OUTBOX.enqueue(conn, &Event::OrderCreated(created)).await?;
        Ok::<_, OrderError>((order.id, placed_view(conn, order.id).await?))
    })
    .await?;
    if order_id == order.id {
        metrics::counter!("orders_placed_total").increment(1);
    }
    view.access_token = token.map(|(token, _)| token);
    Ok(view)
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
    /// Why a failed order failed, one of the contract's `FailureReason`s: `out_of_stock`,
    /// `unknown_product`, `payment_declined`, `insufficient_funds`, `payment_failed`,
    /// `payment_timeout` (the customer did not finish paying in time), `expired` (an operator
    /// failed an order stuck in the saga).
    #[schema(value_type = Option<String>, example = "payment_timeout")]
    pub failure_reason: Option<FailureReason>,
    pub customer_name: String,
    pub customer_email: String,
    pub customer_phone: Option<String>,
    #[schema(value_type = String, example = "USD")]
    pub currency: Currency,
    pub payment_method: String,
    pub items: Vec<ItemView>,
    #[schema(value_type = String, example = "1999.98")]
    pub total_amount: Amount,
    /// What was given back to the customer (refunds after a cancellation, or after a payment
    /// that completed once the order had already ended); each refund is also a `refunded` line
    /// in `status_history`, and a payment cancelled before money moved a `voided` line.
    #[schema(value_type = String, example = "0.00")]
    pub refunded_amount: Amount,
    /// Orders placed with a `currency` other than their products' only: the rate the prices
    /// were converted with, locked when the order was placed (the invoice shows it too).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange_rate: Option<crate::rates::ExchangeRateView>,
    pub status_history: Vec<HistoryView>,
    pub invoice_sent: bool,
    pub webhook_sent: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Guest orders, in the answer to `POST /orders` only: the secret that reads or cancels
    /// this order (`?access_token=` or the `Order-Access-Token` header). Shown once, stored
    /// only hashed; the invoice email carries a link with a token too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
}

/// Whether `presented` is one of this guest order's access tokens (never for account orders).
async fn token_matches(
    conn: &mut AsyncPgConnection,
    order: &OrderRow,
    presented: Option<&str>,
) -> Result<bool, OrderError> {
    let Some(presented) = presented.filter(|_| order.customer_id.is_none()) else {
        return Ok(false);
    };
    let stored = store::access_token_hashes(conn, order.id).await?;
    Ok(stored.iter().any(|hash| access_token::matches(presented, hash)))
}

fn check(access: Access) -> Result<(), OrderError> {
    match access {
        Access::Allowed => Ok(()),
        Access::Hidden => Err(OrderError::NotFound),
    }
}

/// The order, if `caller` may see it or `access_token` opens it; `NotFound` otherwise, exactly
/// as for an id that does not exist.
pub async fn find_with_token(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    caller: Option<&Claims>,
    access_token: Option<&str>,
) -> Result<OrderView, OrderError> {
    let order = store::find_order(conn, id).await?.ok_or(OrderError::NotFound)?;
    let token_matches = token_matches(conn, &order, access_token).await?;
    check(can_read(order.customer_id, caller, token_matches))?;
    find(conn, id).await?.ok_or(OrderError::NotFound)
}

/// On whose behalf the gateway asks payment for an order's payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentReader {
    /// The caller's own identity: the customer who placed the order, or an admin.
    Caller,
    /// A guest order opened with its access token: payment gets a token for that order alone.
    GuestOrder,
}

/// Who reads `id`'s payment, if the caller (or the access token) may read the order at all;
/// `NotFound` otherwise, as for the order itself.
pub async fn payment_reader(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    caller: Option<&Claims>,
    access_token: Option<&str>,
) -> Result<PaymentReader, OrderError> {
    let order = store::find_order(conn, id).await?.ok_or(OrderError::NotFound)?;
    let token_matches = token_matches(conn, &order, access_token).await?;
    check(can_read(order.customer_id, caller, token_matches))?;
    let admin = caller.is_some_and(|claims| claims.role == Role::Admin);
    // A customer reading a guest order got in with its token, not as an owner: payment would
    // (rightly) not know them as the order's customer.
    Ok(if order.customer_id.is_none() && !admin { PaymentReader::GuestOrder } else { PaymentReader::Caller })
}

/// The order just placed (or found by its idempotency key), which must exist.
async fn placed_view(conn: &mut AsyncPgConnection, id: Uuid) -> Result<OrderView, OrderError> {
    find(conn, id).await?.ok_or(OrderError::Db(diesel::result::Error::NotFound))
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<OrderView>, OrderError> {
    let Some(order) = store::find_order(conn, id).await? else {
        return Ok(None);
    };
    let items = store::items_of(conn, id).await?;
    let history = store::history_of(conn, id).await?;
    let mut view = view(order, items, history)?;
    view.exchange_rate = crate::rates::locked_rate_of(conn, id).await?.map(Into::into);
    Ok(Some(view))
}

fn view(
    order: OrderRow,
    items: Vec<store::ItemRow>,
    history: Vec<store::HistoryRow>,
) -> Result<OrderView, diesel::result::Error> {
    let failure_reason = order.failure_reason;
    Ok(OrderView {
        id: order.id,
        status: order.status.to_string(),
        failure_reason,
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
        refunded_amount: Amount::from_db(order.refunded_amount),
        exchange_rate: None,
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
        access_token: None,
    })
}

/// A page of orders; pass `next_cursor` as `starting_after` (with the same `order`) for the
/// next one (null: the end).
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
    // Three queries a page whatever its size: the orders, then the items and the history of
    // all of them at once.
    let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
    let mut items_of = store::items_of_orders(conn, &ids).await?;
    let mut history_of = store::history_of_orders(conn, &ids).await?;
    let mut rates_of = crate::rates::locked_rates_of(conn, &ids).await?;
    let items = rows
        .into_iter()
        .map(|row| {
            let items = items_of.remove(&row.id).unwrap_or_default();
            let history = history_of.remove(&row.id).unwrap_or_default();
            let exchange_rate = rates_of.remove(&row.id).map(Into::into);
            view(row, items, history).map(|view| OrderView { exchange_rate, ..view })
        })
        .collect::<Result<_, _>>()?;
    Ok(Page { items, next_cursor })
}

pub fn parse_status(raw: &str) -> Result<OrderStatus, Violation> {
    raw.parse().map_err(|_| Violation::new("status", format!("unknown order status `{raw}`")))
}
