//! The daily sales summary: yesterday's orders, revenue by currency and failures by reason,
//! from the order ledger, emailed to admins once a day by one replica.
//!
//! A day is sent inside one transaction that holds `pg_try_advisory_xact_lock` (a second
//! replica skips instead of waiting) and inserts the day's `summaries` row; the row commits
//! only after the emails went out, so a failed send is tried again at the next check and a
//! sent day is never sent again. A crash between sending and commit can resend once.

use crate::channels::{Outgoing, SendError, Transport};
use crate::settings::DailySummary;
use crate::store::ledger::{self, DayTotals};
use crate::template;
use chrono::{Days, NaiveDate, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use platform::db::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How often the scheduler looks whether a summary is due; cheap, and it bounds the delay after
/// the configured time or after a failed send.
const CHECK_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryOutcome {
    Sent,
    /// The day's row exists: this or another replica sent it before.
    AlreadySent,
    /// Another replica is sending right now.
    Busy,
}

#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("database: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("no database connection: {0}")]
    Pool(#[from] diesel_async::pooled_connection::deadpool::PoolError),
    #[error("cannot send the summary: {0}")]
    Send(#[from] SendError),
}

/// Sends the summary of `day` (UTC) to `recipients`, unless it was sent already.
pub async fn send_for_day(
    pool: &PgPool,
    email: &dyn Transport,
    recipients: &[String],
    day: NaiveDate,
) -> Result<SummaryOutcome, SummaryError> {
    let mut pooled = pool.get().await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    conn.transaction(async |conn: &mut AsyncPgConnection| {
        if !ledger::try_lock(conn, platform::db::lock_key("notifier.daily_summary")).await? {
            return Ok(SummaryOutcome::Busy);
        }
        if !ledger::claim_summary(conn, day, &recipients.join(",")).await? {
            return Ok(SummaryOutcome::AlreadySent);
        }
        let totals = ledger::day_totals(conn, day).await?;
        let (subject, body) = render(day, &totals);
        for recipient in recipients {
            let message =
                Outgoing { id: Uuid::now_v7(), recipient, subject: &subject, body: &body, html_body: None };
            email.send(message).await?;
        }
        Ok(SummaryOutcome::Sent)
    })
    .await
}

/// The summary's subject and plain-text body.
pub fn render(day: NaiveDate, totals: &DayTotals) -> (String, String) {
    let confirmed: i64 = totals.revenue.iter().map(|r| r.orders).sum();
    let failed: i64 = totals.failures.iter().map(|f| f.n).sum();
    let none = || "  (none)".to_owned();
    let revenue = if totals.revenue.is_empty() {
        none()
    } else {
        let rows = totals
            .revenue
            .iter()
            .map(|r| format!("  {} {} ({} orders)", r.currency, r.total.with_scale(2), r.orders));
        rows.collect::<Vec<_>>().join("\n")
    };
    let failures = if totals.failures.is_empty() {
        none()
    } else {
        totals.failures.iter().map(|f| format!("  {}: {}", f.label, f.n)).collect::<Vec<_>>().join("\n")
    };
    let (day, confirmed, failed, cancelled) =
        (day.to_string(), confirmed.to_string(), failed.to_string(), totals.cancelled.to_string());
    template::DAILY_SUMMARY_TEXT.render_with_subject(&[
        ("day", &day),
        ("confirmed", &confirmed),
        ("failed", &failed),
        ("cancelled", &cancelled),
        ("revenue", &revenue),
        ("failures", &failures),
    ])
}

/// The scheduler: once today's configured time has passed, yesterday's summary is due.
pub struct SummaryJob {
    pub pool: PgPool,
    pub email: Arc<dyn Transport>,
    pub config: DailySummary,
}

impl SummaryJob {
    pub async fn run(self, cancel: CancellationToken) {
        tracing::info!(at = %self.config.at, recipients = self.config.recipients.len(), "daily summary scheduled (UTC)");
        while !cancel.is_cancelled() {
            let now = Utc::now();
            if now.time() >= self.config.at
                && let Some(yesterday) = now.date_naive().checked_sub_days(Days::new(1))
            {
                match send_for_day(&self.pool, self.email.as_ref(), &self.config.recipients, yesterday).await
                {
                    Ok(SummaryOutcome::Sent) => tracing::info!(day = %yesterday, "daily summary sent"),
                    Ok(SummaryOutcome::AlreadySent | SummaryOutcome::Busy) => {}
                    Err(error) => {
                        tracing::warn!(day = %yesterday, %error, "daily summary not sent; will retry")
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(CHECK_EVERY) => {}
                _ = cancel.cancelled() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ledger::{Count, Revenue};

    #[test]
    fn the_summary_layout_is_pinned() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap_or_default();
        let dec = |raw: &str| raw.parse().unwrap_or_else(|e| panic!("{e}"));
        let totals = DayTotals {
            revenue: vec![
                Revenue { currency: "EUR".into(), orders: 1, total: dec("42") },
                Revenue { currency: "USD".into(), orders: 2, total: dec("2004.98") },
            ],
            failures: vec![
                Count { label: "out_of_stock".into(), n: 2 },
                Count { label: "payment_declined".into(), n: 1 },
            ],
            cancelled: 1,
        };
        let (subject, body) = render(day, &totals);
        insta::assert_snapshot!("daily_summary_subject", subject);
        insta::assert_snapshot!("daily_summary_text", body);
        let (_, empty) = render(day, &DayTotals { revenue: vec![], failures: vec![], cancelled: 0 });
        insta::assert_snapshot!("daily_summary_empty_text", empty);
    }
}
