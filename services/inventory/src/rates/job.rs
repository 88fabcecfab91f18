//! The daily refresh: once at start-up when the rates held are missing or not today's, then
//! every day at `RATES_REFRESH_AT`; a failed load is retried every few minutes until the next
//! day's run. One replica at a time runs it (a session advisory lock); the others skip.

use super::source::Source;
use chrono::{DateTime, NaiveTime, Utc};
use platform::db::{AdvisoryLock, PgPool};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const RETRY_AFTER: Duration = Duration::from_secs(600);

pub struct RatesJob {
    pub pool: PgPool,
    pub source: Source,
    pub at: NaiveTime,
}

impl RatesJob {
    pub async fn run(self, cancel: CancellationToken) {
        let mut ok = !self.stale_at_start().await || self.refresh_once().await;
        loop {
            let next = until_next(Utc::now(), self.at);
            let wait = if ok { next } else { next.min(RETRY_AFTER) };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = cancel.cancelled() => return,
            }
            ok = self.refresh_once().await;
        }
    }

    async fn stale_at_start(&self) -> bool {
        let held = match self.pool.get().await {
            Ok(mut conn) => super::store::current(&mut conn).await.ok().flatten(),
            Err(_) => None,
        };
        held.is_none_or(|table| table.date < Utc::now().date_naive())
    }

    /// True when the rates were loaded (or another replica is loading them).
    async fn refresh_once(&self) -> bool {
        let held = match AdvisoryLock::named("inventory.rates_job").try_hold(&self.pool).await {
            Ok(Some(held)) => held,
            Ok(None) => return true,
            Err(error) => {
                tracing::warn!(%error, "cannot take the exchange-rate job's lock; will retry");
                return false;
            }
        };
        let outcome = super::refresh(&self.pool, Some(&self.source)).await;
        if let Err(error) = held.release().await {
            tracing::warn!(%error, "cannot release the exchange-rate job's lock");
        }
        match outcome {
            Ok(_) => true,
            Err(error) => {
                metrics::counter!("exchange_rate_refresh_failures_total").increment(1);
                tracing::warn!(%error, "exchange rates not refreshed; the rates held stay in use");
                false
            }
        }
    }
}

/// How long from `now` until the next `at` (UTC), today's if still ahead, else tomorrow's.
pub fn until_next(now: DateTime<Utc>, at: NaiveTime) -> Duration {
    let today = now.date_naive().and_time(at).and_utc();
    let next = if today > now { today } else { today + chrono::Duration::days(1) };
    (next - now).to_std().unwrap_or(RETRY_AFTER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_next_run_is_today_if_ahead_else_tomorrow() {
        let at = NaiveTime::from_hms_opt(16, 0, 0).unwrap_or_default();
        let morning = Utc.with_ymd_and_hms(2027, 1, 4, 9, 30, 0).single().unwrap_or_default();
        assert_eq!(until_next(morning, at), Duration::from_secs(6 * 3600 + 1800));
        let evening = Utc.with_ymd_and_hms(2027, 1, 4, 16, 0, 0).single().unwrap_or_default();
        assert_eq!(until_next(evening, at), Duration::from_secs(24 * 3600));
    }
}
