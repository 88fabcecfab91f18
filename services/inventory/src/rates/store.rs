//! The `exchange_rates` table: the rates of one publication date, replaced whole.

use bigdecimal::BigDecimal;
use chrono::NaiveDate;
use contracts::Currency;
use contracts::exchange::{ExchangeRate, RateTable};
use diesel::QueryableByName;
use diesel::sql_types::{Array, Date, Numeric, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

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

/// The rates held, if any were ever loaded.
pub async fn current(conn: &mut AsyncPgConnection) -> diesel::QueryResult<Option<RateTable>> {
    let rows: Vec<RateRow> =
        diesel::sql_query("SELECT currency, rate, base, rate_date FROM exchange_rates ORDER BY currency")
            .load(conn)
            .await?;
    let Some(first) = <[RateRow]>::first(&rows) else {
        return Ok(None);
    };
    let (base, date) = (first.base.clone(), first.rate_date);
    // NUMERIC(20, 10) pads with zeros: give the rates back as published.
    let rates = rows
        .into_iter()
        .map(|row| ExchangeRate { currency: row.currency, rate: contracts::exchange::trimmed(row.rate) })
        .collect();
    Ok(Some(RateTable { base, date, rates }))
}

/// Replaces every rate with `table`'s; call inside the refresh transaction.
pub async fn replace(conn: &mut AsyncPgConnection, table: &RateTable) -> diesel::QueryResult<()> {
    diesel::sql_query("DELETE FROM exchange_rates").execute(conn).await?;
    let currencies: Vec<&str> = table.rates.iter().map(|r| r.currency.as_str()).collect();
    let rates: Vec<&BigDecimal> = table.rates.iter().map(|r| &r.rate).collect();
    diesel::sql_query(
        "INSERT INTO exchange_rates (currency, rate, base, rate_date) \
         SELECT unnest($1::text[]), unnest($2::numeric[]), $3, $4",
    )
    .bind::<Array<Text>, _>(currencies)
    .bind::<Array<Numeric>, _>(rates)
    .bind::<Text, _>(table.base.as_str())
    .bind::<Date, _>(table.date)
    .execute(conn)
    .await?;
    Ok(())
}
