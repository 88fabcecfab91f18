//! The gateway's tables: orders, their items and status history, and the catalog read model.

use crate::domain::new_order::{CatalogEntry, NewOrder};
use crate::domain::status::OrderStatus;
use bigdecimal::BigDecimal;
use chrono::{DateTime, Utc};
use contracts::events::{Customer, FailureReason, OrderLine, ProductUpserted, ReservedLine};
use contracts::{Amount, Currency};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use std::collections::HashMap;
use uuid::Uuid;

pub(crate) use crate::schema::order_api::{
    catalog_products, order_access_tokens, order_items, order_status_history, orders,
};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = orders)]
pub struct OrderRow {
    pub id: Uuid,
    pub status: OrderStatus,
    pub failure_reason: Option<FailureReason>,
    pub customer_name: String,
    pub customer_email: String,
    pub currency: String,
    pub total_amount: BigDecimal,
    pub payment_method: String,
    pub invoice_sent: bool,
    pub webhook_sent: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub customer_id: Option<Uuid>,
    pub customer_phone: Option<String>,
    /// What payment.refunded gave back so far.
    pub refunded_amount: BigDecimal,
}

impl OrderRow {
    /// The customer as events carry them. A guest's phone number stays here: nobody verified
    /// it, and texting whatever number an anonymous caller typed is toll fraud waiting to
    /// happen, so notifier never learns it (no SMS for guest orders).
    pub fn customer(&self) -> Customer {
        Customer {
            name: self.customer_name.clone(),
            email: self.customer_email.clone(),
            phone: self.customer_id.and(self.customer_phone.clone()),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = order_items)]
pub struct ItemRow {
    pub line_no: i32,
    pub product_id: Uuid,
    pub product_name: String,
    pub quantity: i32,
    pub price_at_purchase: BigDecimal,
    pub subtotal: BigDecimal,
}

impl ItemRow {
    /// The quantity of this line, as inventory reserves and releases it.
    pub fn to_reserved_line(&self) -> ReservedLine {
        ReservedLine { product_id: self.product_id, quantity: u32::try_from(self.quantity).unwrap_or(0) }
    }

    pub fn to_line(&self) -> OrderLine {
        OrderLine {
            product_id: self.product_id,
            product_name: self.product_name.clone(),
            quantity: u32::try_from(self.quantity).unwrap_or(0),
            unit_price: Amount::from_db(self.price_at_purchase.clone()),
            subtotal: Amount::from_db(self.subtotal.clone()),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = order_status_history)]
pub struct HistoryRow {
    pub status: String,
    pub reason: Option<String>,
    pub caused_by: String,
    pub at: DateTime<Utc>,
}

/// Applies a product change unless a newer version is already known (events can be reordered).
pub async fn upsert_catalog(conn: &mut AsyncPgConnection, product: &ProductUpserted) -> QueryResult<()> {
    use diesel::sql_types::{BigInt, Bool, Numeric, Text, Uuid as SqlUuid};
    diesel::sql_query(
        "INSERT INTO catalog_products (id, sku, name, price, currency, available, active, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (id) DO UPDATE SET sku = EXCLUDED.sku, name = EXCLUDED.name, price = EXCLUDED.price, \
           currency = EXCLUDED.currency, available = EXCLUDED.available, active = EXCLUDED.active, \
           version = EXCLUDED.version, updated_at = now() \
         WHERE catalog_products.version < EXCLUDED.version",
    )
    .bind::<SqlUuid, _>(product.product_id)
    .bind::<Text, _>(&product.sku)
    .bind::<Text, _>(&product.name)
    .bind::<Numeric, _>(&product.price)
    .bind::<Text, _>(&product.currency)
    .bind::<BigInt, _>(product.available)
    .bind::<Bool, _>(product.active)
    .bind::<BigInt, _>(product.version)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn catalog_entries(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> QueryResult<HashMap<Uuid, CatalogEntry>> {
    let rows: Vec<(Uuid, String, BigDecimal, String, bool)> = catalog_products::table
        .filter(catalog_products::id.eq_any(ids))
        .select((
            catalog_products::id,
            catalog_products::name,
            catalog_products::price,
            catalog_products::currency,
            catalog_products::active,
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, price, currency, active)| {
            (
                id,
                CatalogEntry {
                    name,
                    price: Amount::from_db(price),
                    currency: Currency::from_db(currency),
                    active,
                },
            )
        })
        .collect())
}

/// `guest_client`: the address that placed a guest order (the open-order limit counts by it).
/// The caller's scope and `Idempotency-Key` a request came with (see `idempotency`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    pub scope: String,
    pub key: String,
}

/// The order an earlier request with this key placed, if one committed.
pub async fn order_of_idempotency_key(
    conn: &mut AsyncPgConnection,
    claim: &IdempotencyClaim,
) -> QueryResult<Option<Uuid>> {
    orders::table
        .filter(orders::idempotency_scope.eq(&claim.scope))
        .filter(orders::idempotency_key.eq(&claim.key))
        .select(orders::id)
        .first(conn)
        .await
        .optional()
}

pub async fn insert_order(
    conn: &mut AsyncPgConnection,
    order: &NewOrder,
    guest_client: Option<&str>,
    claim: Option<&IdempotencyClaim>,
) -> QueryResult<()> {
    diesel::insert_into(orders::table)
        .values((
            orders::id.eq(order.id),
            orders::status.eq(OrderStatus::Pending),
            orders::customer_name.eq(&order.customer.name),
            orders::customer_email.eq(&order.customer.email),
            orders::currency.eq(order.currency.as_str()),
            orders::total_amount.eq(order.total_amount.as_decimal()),
            orders::payment_method.eq(&order.payment_method),
            orders::customer_id.eq(order.owner),
            orders::customer_phone.eq(&order.customer.phone),
            orders::guest_client.eq(guest_client),
            orders::idempotency_scope.eq(claim.map(|c| c.scope.as_str())),
            orders::idempotency_key.eq(claim.map(|c| c.key.as_str())),
        ))
        .execute(conn)
        .await?;
    let items: Vec<_> = order
        .lines
        .iter()
        .enumerate()
        .map(|(index, line)| {
            (
                order_items::order_id.eq(order.id),
                order_items::line_no.eq(index as i32 + 1),
                order_items::product_id.eq(line.product_id),
                order_items::product_name.eq(&line.product_name),
                order_items::quantity.eq(line.quantity as i32),
                order_items::price_at_purchase.eq(line.unit_price.as_decimal()),
                order_items::subtotal.eq(line.subtotal.as_decimal()),
            )
        })
        .collect();
    diesel::insert_into(order_items::table).values(items).execute(conn).await?;
    record_status(conn, order.id, OrderStatus::Pending, None, "api").await
}

pub async fn find_order(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<OrderRow>> {
    orders::table.find(id).select(OrderRow::as_select()).first(conn).await.optional()
}

/// The order, locked until the transaction ends, so concurrent events for one order apply one
/// after the other.
pub async fn lock_order(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<OrderRow>> {
    orders::table.find(id).select(OrderRow::as_select()).for_update().first(conn).await.optional()
}

pub async fn items_of(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Vec<ItemRow>> {
    order_items::table
        .filter(order_items::order_id.eq(id))
        .order(order_items::line_no)
        .select(ItemRow::as_select())
        .load(conn)
        .await
}

pub async fn history_of(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Vec<HistoryRow>> {
    order_status_history::table
        .filter(order_status_history::order_id.eq(id))
        .order(order_status_history::id)
        .select(HistoryRow::as_select())
        .load(conn)
        .await
}

pub async fn set_status(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    status: OrderStatus,
    failure_reason: Option<FailureReason>,
    caused_by: &str,
) -> QueryResult<()> {
    diesel::update(orders::table.find(id))
        .set((
            orders::status.eq(status),
            orders::failure_reason.eq(failure_reason),
            orders::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    record_status(conn, id, status, failure_reason.map(FailureReason::as_str), caused_by).await
}

/// What the payment did after the order ended: `refunded` (with the amount, added to
/// `refunded_amount`) or `voided` (nothing was charged). A line in the status history that is
/// not an order status: the order keeps the status that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoneyBack<'a> {
    Refunded { amount: &'a BigDecimal, currency: &'a str },
    Voided,
}

pub async fn record_money_back(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    what: MoneyBack<'_>,
    caused_by: &str,
) -> QueryResult<()> {
    let (entry, reason) = match what {
        MoneyBack::Refunded { amount, currency } => {
            diesel::update(orders::table.find(id))
                .set((
                    orders::refunded_amount.eq(orders::refunded_amount + amount),
                    orders::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
            ("refunded", Some(format!("{amount} {currency}")))
        }
        MoneyBack::Voided => ("voided", None),
    };
    diesel::insert_into(order_status_history::table)
        .values((
            order_status_history::order_id.eq(id),
            order_status_history::status.eq(entry),
            order_status_history::reason.eq(reason),
            order_status_history::caused_by.eq(caused_by),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// The latest order status recorded before a new one (not `refunded` / `voided` lines).
#[derive(QueryableByName)]
struct PreviousStatus {
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    at: DateTime<Utc>,
}

async fn record_status(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    status: OrderStatus,
    reason: Option<&str>,
    caused_by: &str,
) -> QueryResult<()> {
    use diesel::sql_types::{Array, Nullable, Text};
    // One round trip (it was two, three times per order): the new line, and for
    // `order_state_duration_seconds{from}` (how long the order stayed in the status it leaves)
    // the latest status line before it, read from the statement's snapshot as before.
    let statuses: Vec<&str> =
        <OrderStatus as strum::VariantArray>::VARIANTS.iter().map(|status| status.as_str()).collect();
    let previous: Option<PreviousStatus> = diesel::sql_query(
        "WITH previous AS ( \
             SELECT status, at FROM order_status_history \
             WHERE order_id = $1 AND status = ANY($5) ORDER BY id DESC LIMIT 1), \
         recorded AS ( \
             INSERT INTO order_status_history (order_id, status, reason, caused_by) \
             VALUES ($1, $2, $3, $4)) \
         SELECT status, at FROM previous",
    )
    .bind::<diesel::sql_types::Uuid, _>(id)
    .bind::<Text, _>(status.as_str())
    .bind::<Nullable<Text>, _>(reason)
    .bind::<Text, _>(caused_by)
    .bind::<Array<Text>, _>(&statuses)
    .get_result(conn)
    .await
    .optional()?;
    if let Some(PreviousStatus { status: from, at: since }) = previous {
        let seconds = (Utc::now() - since).num_milliseconds().max(0) as f64 / 1000.0;
        metrics::histogram!("order_state_duration_seconds", "from" => from).record(seconds);
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
pub enum DeliveryFlag {
    Invoice,
    Webhook,
}

pub async fn mark_delivered(conn: &mut AsyncPgConnection, id: Uuid, flag: DeliveryFlag) -> QueryResult<()> {
    let target = orders::table.find(id);
    match flag {
        DeliveryFlag::Invoice => {
            diesel::update(target).set(orders::invoice_sent.eq(true)).execute(conn).await?
        }
        DeliveryFlag::Webhook => {
            diesel::update(target).set(orders::webhook_sent.eq(true)).execute(conn).await?
        }
    };
    Ok(())
}

diesel::define_sql_function! {
    /// PostgreSQL's `lower(text)`: the email filter compares through it on both sides, and
    /// `orders_customer_email_lower` indexes the same expression.
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// Which end of the list comes first. Either way the cursor is the id of a page's last order
/// and the next page holds the orders after it in the same direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ListOrder {
    /// Oldest first (the default).
    #[default]
    Asc,
    /// Newest first.
    Desc,
}

#[derive(Debug, Default)]
pub struct OrderFilter {
    /// Only this customer's orders (every customer's listing is scoped to themselves).
    pub owner: Option<Uuid>,
    /// Compared case-insensitively: guest orders keep the address as it was typed.
    pub customer_email: Option<String>,
    pub status: Option<OrderStatus>,
    pub starting_after: Option<Uuid>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub order: ListOrder,
}

/// Orders in id order (UUIDv7: creation order), oldest or newest first, so a cursor walk sees
/// each order once even while new ones arrive: they sort after the cursor oldest first, and
/// before the first page newest first.
pub async fn list_orders(
    conn: &mut AsyncPgConnection,
    filter: &OrderFilter,
    limit: i64,
) -> QueryResult<Vec<OrderRow>> {
    let mut query = orders::table.select(OrderRow::as_select()).limit(limit).into_boxed();
    query = match filter.order {
        ListOrder::Asc => query.order(orders::id.asc()),
        ListOrder::Desc => query.order(orders::id.desc()),
    };
    if let Some(status) = filter.status {
        query = query.filter(orders::status.eq(status));
    }
    if let Some(owner) = filter.owner {
        query = query.filter(orders::customer_id.eq(owner));
    }
    if let Some(email) = &filter.customer_email {
        query = query.filter(lower(orders::customer_email).eq(lower(email.clone())));
    }
    if let Some(cursor) = filter.starting_after {
        query = match filter.order {
            ListOrder::Asc => query.filter(orders::id.gt(cursor)),
            ListOrder::Desc => query.filter(orders::id.lt(cursor)),
        };
    }
    if let Some(after) = filter.created_after {
        query = query.filter(orders::created_at.gt(after));
    }
    if let Some(before) = filter.created_before {
        query = query.filter(orders::created_at.lt(before));
    }
    query.load(conn).await
}

/// The items of every order in `ids`, by order, each in line order: one query for a page.
pub async fn items_of_orders(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> QueryResult<HashMap<Uuid, Vec<ItemRow>>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, ItemRow)> = order_items::table
        .filter(order_items::order_id.eq_any(ids))
        .order((order_items::order_id, order_items::line_no))
        .select((order_items::order_id, ItemRow::as_select()))
        .load(conn)
        .await?;
    Ok(group(rows))
}

/// The status history of every order in `ids`, by order, each oldest first: one query for a page.
pub async fn history_of_orders(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> QueryResult<HashMap<Uuid, Vec<HistoryRow>>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, HistoryRow)> = order_status_history::table
        .filter(order_status_history::order_id.eq_any(ids))
        .order((order_status_history::order_id, order_status_history::id))
        .select((order_status_history::order_id, HistoryRow::as_select()))
        .load(conn)
        .await?;
    Ok(group(rows))
}

/// Rows keyed by their order, keeping their order within each.
fn group<T>(rows: Vec<(Uuid, T)>) -> HashMap<Uuid, Vec<T>> {
    let mut grouped: HashMap<Uuid, Vec<T>> = HashMap::new();
    for (order_id, row) in rows {
        grouped.entry(order_id).or_default().push(row);
    }
    grouped
}

/// Who an open (unpaid) order is counted against.
#[derive(Debug, Clone)]
pub enum OpenOrdersOf {
    Account(Uuid),
    Guest(String),
}

/// Serialises order intake per client until the transaction ends, so the open-order count
/// cannot be raced past its limit by parallel requests (on any replica).
pub async fn lock_client(conn: &mut AsyncPgConnection, client: &OpenOrdersOf) -> QueryResult<()> {
    let key = match client {
        OpenOrdersOf::Account(id) => format!("open-orders:account:{id}"),
        OpenOrdersOf::Guest(address) => format!("open-orders:guest:{address}"),
    };
    platform::db::AdvisoryLock::named(&key).lock_in(conn).await
}

/// Orders of `client` still `pending` or `processing` (placed, not yet paid or failed).
pub async fn count_open_orders(conn: &mut AsyncPgConnection, client: &OpenOrdersOf) -> QueryResult<i64> {
    let open = orders::table
        .filter(orders::status.eq_any([OrderStatus::Pending, OrderStatus::Processing]))
        .count()
        .into_boxed();
    match client {
        OpenOrdersOf::Account(id) => open.filter(orders::customer_id.eq(*id)).get_result(conn).await,
        OpenOrdersOf::Guest(address) => {
            open.filter(orders::guest_client.eq(address.clone())).get_result(conn).await
        }
    }
}

/// What an access token was issued for.
#[derive(Debug, Clone, Copy)]
pub enum TokenPurpose {
    /// Returned once by `POST /orders`.
    Created,
    /// Sent in the invoice link.
    Invoice,
}

impl TokenPurpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Invoice => "invoice",
        }
    }
}

/// Stores (or replaces) the hash of an order's access token for `purpose`.
pub async fn save_access_token(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
    purpose: TokenPurpose,
    token_hash: &[u8],
) -> QueryResult<()> {
    diesel::insert_into(order_access_tokens::table)
        .values((
            order_access_tokens::order_id.eq(order_id),
            order_access_tokens::purpose.eq(purpose.as_str()),
            order_access_tokens::token_hash.eq(token_hash),
        ))
        .on_conflict((order_access_tokens::order_id, order_access_tokens::purpose))
        .do_update()
        .set(order_access_tokens::token_hash.eq(token_hash))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn access_token_hashes(conn: &mut AsyncPgConnection, order_id: Uuid) -> QueryResult<Vec<Vec<u8>>> {
    order_access_tokens::table
        .filter(order_access_tokens::order_id.eq(order_id))
        .select(order_access_tokens::token_hash)
        .load(conn)
        .await
}
