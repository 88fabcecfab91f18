//! The gateway's copy of the exchange rates (inventory owns them and publishes
//! `exchange_rates.updated`) and the rate each converted order locked when it was placed.

use bigdecimal::BigDecimal;
use chrono::NaiveDate;
use contracts::Currency;
use contracts::events::ExchangeRatesUpdated;
use contracts::exchange::{ExchangeRate, LockedRate, RateTable};
use diesel::QueryableByName;
use diesel::sql_types::{Array, Date, Numeric, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use std::collections::HashMap;
use uuid::Uuid;

/// The rate an order was converted with, as the order JSON shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ExchangeRateView {
    /// The products' currency (their prices were converted from it).
    #[schema(value_type = String, example = "USD")]
    pub from: Currency,
    /// The order's currency.
    #[schema(value_type = String, example = "EUR")]
    pub to: Currency,
    /// One `from` costs `rate` `to`; unit prices were converted with it and rounded half-up to
    /// `to`'s minor units.
    #[schema(value_type = String, example = "0.8640802")]
    pub rate: BigDecimal,
    /// The publication date of the reference rates used.
    pub date: NaiveDate,
}

impl From<LockedRate> for ExchangeRateView {
    fn from(locked: LockedRate) -> Self {
        Self { from: locked.from, to: locked.to, rate: locked.rate, date: locked.date }
    }
}

/// Replaces the rates held with `update`'s, unless those are older (events can be reordered).
pub async fn apply_update(
    conn: &mut AsyncPgConnection,
    update: &ExchangeRatesUpdated,
) -> diesel::QueryResult<()> {
    if let Some(held) = current(conn).await?
        && held.date > update.date
    {
        tracing::info!(held = %held.date, update = %update.date, "older exchange rates ignored");
        return Ok(());
    }
    diesel::sql_query("DELETE FROM exchange_rates").execute(conn).await?;
    let currencies: Vec<&str> = update.rates.iter().map(|r| r.currency.as_str()).collect();
    let rates: Vec<&BigDecimal> = update.rates.iter().map(|r| &r.rate).collect();
    diesel::sql_query(
        "INSERT INTO exchange_rates (currency, rate, base, rate_date) \
         SELECT unnest($1::text[]), unnest($2::numeric[]), $3, $4",
    )
    .bind::<Array<Text>, _>(currencies)
    .bind::<Array<Numeric>, _>(rates)
    .bind::<Text, _>(update.base.as_str())
    .bind::<Date, _>(update.date)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(QueryableByName)]
struct RateRow {
    #[diesel(sql_type = Text)]
    currency: Currency,
    #[diesel(sql_type = Numeric)]
    rate: BigDecimal,
    #[diesel(sql_type = Text)]
    base: Currency,
    #[diesel(sql_type = Date)]
    rate_date: NaiveDate,
}

pub async fn current(conn: &mut AsyncPgConnection) -> diesel::QueryResult<Option<RateTable>> {
    let rows: Vec<RateRow> =
        diesel::sql_query("SELECT currency, rate, base, rate_date FROM exchange_rates ORDER BY currency")
            .load(conn)
            .await?;
    let Some(first) = <[RateRow]>::first(&rows) else {
        return Ok(None);
    };
    let (base, date) = (first.base.clone(), first.rate_date);
    let rates = rows.into_iter().map(|row| ExchangeRate { currency: row.currency, rate: row.rate }).collect();
    Ok(Some(RateTable { base, date, rates }))
}

/// Stores the rate a new order was converted with, in the order's transaction.
pub async fn lock_for_order(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
    locked: &LockedRate,
) -> diesel::QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO order_exchange_rates (order_id, from_currency, to_currency, rate, rate_date) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind::<SqlUuid, _>(order_id)
    .bind::<Text, _>(locked.from.as_str())
    .bind::<Text, _>(locked.to.as_str())
    .bind::<Numeric, _>(&locked.rate)
    .bind::<Date, _>(locked.date)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(QueryableByName)]
struct LockedRow {
    #[diesel(sql_type = SqlUuid)]
    order_id: Uuid,
    #[diesel(sql_type = Text)]
    from_currency: Currency,
    #[diesel(sql_type = Text)]
    to_currency: Currency,
    #[diesel(sql_type = Numeric)]
    rate: BigDecimal,
    #[diesel(sql_type = Date)]
    rate_date: NaiveDate,
}

/// The locked rates of these orders (only converted orders have one).
pub async fn locked_rates_of(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> diesel::QueryResult<HashMap<Uuid, LockedRate>> {
    let rows: Vec<LockedRow> = diesel::sql_query(
        "SELECT order_id, from_currency, to_currency, rate, rate_date FROM order_exchange_rates \
         WHERE order_id = ANY($1)",
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            // The column is NUMERIC(24, 10): give the rate back as it was locked, without the
            // padding zeros.
            let rate = contracts::exchange::trimmed(row.rate);
            (
                row.order_id,
                LockedRate { from: row.from_currency, to: row.to_currency, rate, date: row.rate_date },
            )
        })
        .collect())
}

pub async fn locked_rate_of(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> diesel::QueryResult<Option<LockedRate>> {
    Ok(locked_rates_of(conn, &[id]).await?.remove(&id))
}
