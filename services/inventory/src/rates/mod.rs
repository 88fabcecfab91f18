//! Exchange rates: inventory owns product prices, so it also owns the rates that convert them.
//! A daily job (and an admin's "refresh now") loads the ECB daily-reference feed from
//! `RATES_SOURCE_URL`, stores the day's rates and publishes `exchange_rates.updated` in the same
//! transaction, so the gateway keeps its own copy to price orders without calling inventory.

pub mod ecb;
pub mod http;
pub mod job;
pub mod source;
pub mod store;

use crate::OUTBOX;
use contracts::Event;
use contracts::events::ExchangeRatesUpdated;
use contracts::exchange::RateTable;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use platform::db::{AdvisoryLock, PgPool};
use platform::settings::SettingsError;
use serde::Deserialize;

/// `RATES_*` settings.
#[derive(Debug, Clone, Deserialize)]
pub struct RateSettings {
    /// Where the ECB-format feed is read: `http(s)://…`, `file:///…` or a file path; empty
    /// turns the job and the refresh route off.
    pub rates_source_url: String,
    /// `HH:MM` (UTC): when the daily job loads the day's rates. The ECB publishes around 16:00
    /// CET, so 16:00 UTC is after it in winter and summer.
    pub rates_refresh_at: String,
    /// Rates published more than this many days ago are not used for conversions (422); 0
    /// turns the limit off. Covers weekends and holidays, when the ECB publishes nothing.
    pub rates_max_age_days: u32,
}

impl RateSettings {
    pub fn defaults() -> [(&'static str, String); 3] {
        [
            ("rates_source_url", "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml".to_owned()),
            ("rates_refresh_at", "16:00".to_owned()),
            ("rates_max_age_days", "5".to_owned()),
        ]
    }

    pub fn source(&self) -> Result<Option<source::Source>, SettingsError> {
        source::Source::parse(&self.rates_source_url)
    }

    pub fn refresh_at(&self) -> Result<chrono::NaiveTime, SettingsError> {
        chrono::NaiveTime::parse_from_str(self.rates_refresh_at.trim(), "%H:%M").map_err(|_| {
            SettingsError::Invalid { key: "rates_refresh_at", reason: "must be HH:MM (UTC)".into() }
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("no rates source is configured (RATES_SOURCE_URL)")]
    NoSource,
    #[error("cannot read the rates source: {0}")]
    Fetch(String),
    #[error("the rates source is not a valid ECB feed: {0}")]
    Feed(#[from] ecb::FeedError),
    #[error("the feed's rates are of {feed}, older than the rates of {held} already held")]
    Older { feed: chrono::NaiveDate, held: chrono::NaiveDate },
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error(transparent)]
    Pool(#[from] platform::db::DbError),
}

/// Loads the feed and, if it is good and not older than what is held, replaces the rates and
/// publishes them. Anything wrong leaves the rates held as they were.
pub async fn refresh(pool: &PgPool, source: Option<&source::Source>) -> Result<RateTable, RefreshError> {
    let source = source.ok_or(RefreshError::NoSource)?;
    let body = source.fetch().await.map_err(|e| RefreshError::Fetch(e.to_string()))?;
    let table = ecb::parse(&body)?;
    let mut pooled = pool.get().await.map_err(platform::db::DbError::from)?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    conn.transaction(async |conn: &mut AsyncPgConnection| {
        // Concurrent refreshes (the job, an admin, another replica) write one after the other.
        AdvisoryLock::named("inventory.exchange_rates").lock_in(conn).await?;
        if let Some(held) = store::current(conn).await?
            && held.date > table.date
        {
            return Err(RefreshError::Older { feed: table.date, held: held.date });
        }
        store::replace(conn, &table).await?;
        let event =
            ExchangeRatesUpdated { base: table.base.clone(), date: table.date, rates: table.rates.clone() };
        OUTBOX.enqueue(conn, &Event::ExchangeRatesUpdated(event)).await?;
        Ok::<_, RefreshError>(())
    })
    .await?;
    metrics::counter!("exchange_rate_refreshes_total").increment(1);
    tracing::info!(date = %table.date, currencies = table.rates.len(), "exchange rates loaded");
    Ok(table)
}
