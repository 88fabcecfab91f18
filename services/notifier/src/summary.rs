//! The daily sales summary: yesterday's orders, revenue by currency and failures by reason,
//! from the order ledger, emailed to admins once a day by one replica.
//!
//! A replica sends a day while holding `pg_try_advisory_xact_lock` (a second replica skips
//! instead of waiting), but nothing it learns is written in that transaction: each
//! recipient's result is committed on its own connection as soon as it is known. So a sent
//! email is never sent again, an address the server refuses for good (5xx) is recorded as
//! `rejected` and not retried, and only a "try later" (4xx, server down) is tried again at the
//! next check, up to [`MAX_TRANSIENT_ATTEMPTS`]. Once every recipient is final the day's
//! `summaries` row is written. A crash between a send and its record resends to that one
//! recipient once.
//!
//! After downtime the scheduler catches up every missed day, once each, within
//! [`CATCH_UP_DAYS`] (never days before the first summary this database ever sent).

use crate::channels::{Outgoing, SendError, Transport};
use crate::settings::DailySummary;
use crate::store::ledger::{self, DayTotals};
use crate::store::summaries::{self, RecipientStatus};
use crate::template;
use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use platform::db::{AdvisoryLock, PgPool};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How often the scheduler looks whether a summary is due; cheap, and it bounds the delay after
/// the configured time or after a "try later".
pub const CHECK_EVERY: Duration = Duration::from_secs(60);
/// A recipient whose server keeps saying "try later" is given up for that day after this many
/// checks (half an hour at the default pace), so nothing is retried for ever.
pub const MAX_TRANSIENT_ATTEMPTS: i32 = 30;
/// How far back missed days are caught up after downtime: a week of summaries is useful, a
/// year of them in one burst is not.
pub const CATCH_UP_DAYS: u64 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryOutcome {
    /// Every recipient is final now: this many got it, were refused for good, or gave up
    /// after repeated "try later" answers.
    Sent { delivered: usize, rejected: usize, failed: usize },
    /// Some recipients said "try later"; only they are tried again at the next check.
    Incomplete { waiting: usize },
    /// The day is done: this or another replica sent it before.
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
}

/// Sends the summary of `day` (UTC) to each of `recipients` that has not had it (or a final
/// refusal) yet, recording each result as it comes.
pub async fn send_for_day(
    pool: &PgPool,
    email: &dyn Transport,
    recipients: &[String],
    day: NaiveDate,
) -> Result<SummaryOutcome, SummaryError> {
    let mut locked = pool.get().await?;
    // Results are written on a second connection, outside the lock's transaction, so a
    // failure later on rolls nothing back.
    let mut pooled = pool.get().await?;
    let lock_conn: &mut AsyncPgConnection = &mut locked;
    lock_conn
        .transaction(async |lock: &mut AsyncPgConnection| {
            if !AdvisoryLock::named("notifier.daily_summary").try_lock_in(lock).await? {
                return Ok(SummaryOutcome::Busy);
            }
            let conn: &mut AsyncPgConnection = &mut pooled;
            if summaries::is_complete(conn, day).await? {
                return Ok(SummaryOutcome::AlreadySent);
            }
            let known = summaries::recipients(conn, day).await?;
            let totals = ledger::day_totals(conn, day).await?;
            let (subject, body) = render(day, &totals);
            let (mut delivered, mut rejected, mut failed, mut waiting) = (0, 0, 0, 0);
            for recipient in recipients {
                let before = known.iter().find(|state| &state.recipient == recipient);
                let attempts = match before {
                    Some(state) if state.status.is_final() => {
                        match state.status {
                            RecipientStatus::Sent => delivered += 1,
                            RecipientStatus::Rejected => rejected += 1,
                            RecipientStatus::Failed | RecipientStatus::Retrying => failed += 1,
                        }
                        continue;
                    }
                    Some(state) => state.attempts.saturating_add(1),
                    None => 1,
                };
                let message =
                    Outgoing { id: Uuid::now_v7(), recipient, subject: &subject, body: &body, html_body: None };
                let (status, error) = match email.send(message).await {
                    Ok(_) => (RecipientStatus::Sent, None),
                    Err(SendError::Permanent(error)) => (RecipientStatus::Rejected, Some(error)),
                    Err(SendError::Transient(error)) if attempts >= MAX_TRANSIENT_ATTEMPTS => {
                        (RecipientStatus::Failed, Some(error))
                    }
                    Err(SendError::Transient(error)) => (RecipientStatus::Retrying, Some(error)),
                };
                match status {
                    RecipientStatus::Sent => delivered += 1,
                    RecipientStatus::Rejected => rejected += 1,
                    RecipientStatus::Failed => failed += 1,
                    RecipientStatus::Retrying => waiting += 1,
                }
                if let Some(error) = &error {
                    tracing::warn!(%day, recipient = %recipient, status = <&str>::from(status), attempts, %error, "daily summary not delivered to one recipient");
                }
                summaries::record(conn, day, recipient, status, attempts, error.as_deref()).await?;
            }
            if waiting > 0 {
                return Ok(SummaryOutcome::Incomplete { waiting });
            }
            summaries::complete(conn, day, &recipients.join(",")).await?;
            Ok(SummaryOutcome::Sent { delivered, rejected, failed })
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

/// The latest day whose summary is due at `now`: yesterday once today's `at` has passed, the
/// day before otherwise.
pub fn latest_due(now: DateTime<Utc>, at: NaiveTime) -> Option<NaiveDate> {
    let back = if now.time() >= at { 1 } else { 2 };
    now.date_naive().checked_sub_days(Days::new(back))
}

/// The days to send, oldest first: every day up to `latest` within [`CATCH_UP_DAYS`] that is
/// not `done`, but none before `first` (the first day this database ever summarised); with
/// no history at all, only `latest` (a new installation does not mail a week of summaries).
pub fn due_days(latest: NaiveDate, first: Option<NaiveDate>, done: &[NaiveDate]) -> Vec<NaiveDate> {
    let Some(first) = first else { return vec![latest] };
    let window_start = latest.checked_sub_days(Days::new(CATCH_UP_DAYS - 1)).unwrap_or(latest);
    window_start
        .max(first)
        .iter_days()
        .take_while(|day| *day <= latest)
        .filter(|day| !done.contains(day))
        .collect()
}

/// The scheduler: every `check_every`, sends each due day (see [`due_days`]).
pub struct SummaryJob {
    pub pool: PgPool,
    pub email: Arc<dyn Transport>,
    pub config: DailySummary,
    pub check_every: Duration,
    /// What time it is; the system clock, or a fixed instant in tests.
    pub clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// Checks finished so far, so a test can wait for the loop to have looked again.
    pub checks: Arc<AtomicU64>,
}

impl SummaryJob {
    pub fn new(pool: PgPool, email: Arc<dyn Transport>, config: DailySummary) -> Self {
        Self {
            pool,
            email,
            config,
            check_every: CHECK_EVERY,
            clock: Arc::new(Utc::now),
            checks: Arc::default(),
        }
    }

    pub async fn run(self, cancel: CancellationToken) {
        tracing::info!(at = %self.config.at, recipients = self.config.recipients.len(), "daily summary scheduled (UTC)");
        while !cancel.is_cancelled() {
            if let Err(error) = self.check().await {
                tracing::warn!(%error, "cannot check the daily summary; will look again");
            }
            self.checks.fetch_add(1, Ordering::SeqCst);
            tokio::select! {
                _ = tokio::time::sleep(self.check_every) => {}
                _ = cancel.cancelled() => {}
            }
        }
    }

    /// One look: sends every due day, oldest first.
    pub async fn check(&self) -> Result<(), SummaryError> {
        let Some(latest) = latest_due((self.clock)(), self.config.at) else { return Ok(()) };
        let window_start = latest.checked_sub_days(Days::new(CATCH_UP_DAYS - 1)).unwrap_or(latest);
        let (first, done) = {
            let mut conn = self.pool.get().await?;
            summaries::history(&mut conn, window_start, latest).await?
        };
        for day in due_days(latest, first, &done) {
            match send_for_day(&self.pool, self.email.as_ref(), &self.config.recipients, day).await? {
                SummaryOutcome::Sent { delivered, rejected, failed } => {
                    tracing::info!(%day, delivered, rejected, failed, "daily summary sent")
                }
                SummaryOutcome::Incomplete { waiting } => {
                    tracing::warn!(%day, waiting, "daily summary waits on recipients whose server said try later")
                }
                SummaryOutcome::AlreadySent | SummaryOutcome::Busy => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ledger::{Count, Revenue};

    fn date(raw: &str) -> NaiveDate {
        raw.parse().unwrap_or_else(|e| panic!("{raw}: {e}"))
    }

    #[test]
    fn notifier_fixes_yesterday_is_due_once_the_time_has_passed() {
        let at = NaiveTime::from_hms_opt(7, 0, 0).unwrap_or_default();
        let now = |raw: &str| raw.parse::<DateTime<Utc>>().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(latest_due(now("2026-12-10T07:00:00Z"), at), Some(date("2026-12-09")));
        assert_eq!(latest_due(now("2026-12-10T06:59:59Z"), at), Some(date("2026-12-08")));
    }

    #[test]
    fn notifier_fixes_missed_days_are_caught_up_once_within_a_week_and_never_before_the_first() {
        let latest = date("2026-12-10");
        assert_eq!(due_days(latest, None, &[]), [latest], "a new installation sends only the latest day");
        let first = Some(date("2026-12-06"));
        let done = [date("2026-12-07"), date("2026-12-09")];
        assert_eq!(
            due_days(latest, first, &done),
            [date("2026-12-06"), date("2026-12-08"), date("2026-12-10")]
        );
        assert_eq!(
            due_days(latest, Some(date("2026-01-01")), &[]),
            (4..=10).map(|d| date(&format!("2026-12-{d:02}"))).collect::<Vec<_>>(),
            "at most a week back"
        );
        assert_eq!(due_days(latest, Some(date("2026-12-10")), &[latest]), Vec::<NaiveDate>::new());
    }

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
