//! The order ledger (what notifier learned from `order.*` events) and what a day adds up to.

use bigdecimal::BigDecimal;
use chrono::{DateTime, NaiveDate, Utc};
use contracts::events::Customer;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Nullable, Numeric, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// One fact about an order. Facts only accumulate: the first value of each column wins, so a
/// redelivered or late event never rewrites what is known.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub currency: Option<String>,
    pub total_amount: Option<BigDecimal>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub failed_at: Option<DateTime<Utc>>,
    pub failure_reason: Option<String>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

pub async fn record(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
    customer: &Customer,
    entry: Entry,
) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO order_ledger (order_id, customer_name, customer_email, customer_phone, currency, \
           total_amount, confirmed_at, failed_at, failure_reason, cancelled_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (order_id) DO UPDATE SET \
           currency = COALESCE(order_ledger.currency, EXCLUDED.currency), \
           total_amount = COALESCE(order_ledger.total_amount, EXCLUDED.total_amount), \
           confirmed_at = COALESCE(order_ledger.confirmed_at, EXCLUDED.confirmed_at), \
           failed_at = COALESCE(order_ledger.failed_at, EXCLUDED.failed_at), \
           failure_reason = COALESCE(order_ledger.failure_reason, EXCLUDED.failure_reason), \
           cancelled_at = COALESCE(order_ledger.cancelled_at, EXCLUDED.cancelled_at)",
    )
    .bind::<SqlUuid, _>(order_id)
    .bind::<Text, _>(&customer.name)
    .bind::<Text, _>(&customer.email)
    .bind::<Nullable<Text>, _>(customer.phone.as_deref())
    .bind::<Nullable<Text>, _>(entry.currency)
    .bind::<Nullable<Numeric>, _>(entry.total_amount)
    .bind::<Nullable<Timestamptz>, _>(entry.confirmed_at)
    .bind::<Nullable<Timestamptz>, _>(entry.failed_at)
    .bind::<Nullable<Text>, _>(entry.failure_reason)
    .bind::<Nullable<Timestamptz>, _>(entry.cancelled_at)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(QueryableByName)]
struct CustomerRow {
    #[diesel(sql_type = Text)]
    customer_name: String,
    #[diesel(sql_type = Text)]
    customer_email: String,
    #[diesel(sql_type = Nullable<Text>)]
    customer_phone: Option<String>,
}

/// The customer of an order notifier has heard of.
pub async fn customer(conn: &mut AsyncPgConnection, order_id: Uuid) -> QueryResult<Option<Customer>> {
    let row: Option<CustomerRow> = diesel::sql_query(
        "SELECT customer_name, customer_email, customer_phone FROM order_ledger WHERE order_id = $1",
    )
    .bind::<SqlUuid, _>(order_id)
    .get_result(conn)
    .await
    .optional()?;
    Ok(row.map(|row| Customer {
        name: row.customer_name,
        email: row.customer_email,
        phone: row.customer_phone,
    }))
}

/// Confirmed orders of one currency in a day, and their total.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct Revenue {
    #[diesel(sql_type = Text)]
    pub currency: String,
    #[diesel(sql_type = BigInt)]
    pub orders: i64,
    #[diesel(sql_type = Numeric)]
    pub total: BigDecimal,
}

#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct Count {
    #[diesel(sql_type = Text)]
    pub label: String,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

/// What the ledger says about one UTC day.
#[derive(Debug, Clone, PartialEq)]
pub struct DayTotals {
    pub revenue: Vec<Revenue>,
    pub failures: Vec<Count>,
    pub cancelled: i64,
}

pub async fn day_totals(conn: &mut AsyncPgConnection, day: NaiveDate) -> QueryResult<DayTotals> {
    let revenue = diesel::sql_query(
        "SELECT COALESCE(currency, '?') AS currency, count(*) AS orders, COALESCE(sum(total_amount), 0) AS total \
         FROM order_ledger WHERE confirmed_at >= $1::date AND confirmed_at < $1::date + 1 \
         GROUP BY 1 ORDER BY 1",
    )
    .bind::<Date, _>(day)
    .load(conn)
    .await?;
    let failures = diesel::sql_query(
        "SELECT COALESCE(failure_reason, 'unknown') AS label, count(*) AS n FROM order_ledger \
         WHERE failed_at >= $1::date AND failed_at < $1::date + 1 GROUP BY 1 ORDER BY 2 DESC, 1",
    )
    .bind::<Date, _>(day)
    .load(conn)
    .await?;
    let cancelled: Count = diesel::sql_query(
        "SELECT 'cancelled' AS label, count(*) AS n FROM order_ledger \
         WHERE cancelled_at >= $1::date AND cancelled_at < $1::date + 1",
    )
    .bind::<Date, _>(day)
    .get_result(conn)
    .await?;
    Ok(DayTotals { revenue, failures, cancelled: cancelled.n })
}
