//! One runner for every leased job in the services (a payment to charge, a notification to
//! send, a webhook to deliver): the rows wait in the service's own table with a
//! `next_attempt_at`, and the runner
//!
//! 1. **claims** up to `batch` due rows in one statement (`FOR UPDATE SKIP LOCKED`, pushing
//!    `next_attempt_at` ahead by the lease), so replicas claim side by side and a crashed
//!    worker's rows come back once its lease runs out;
//! 2. **performs** each with no transaction open and at most `concurrency` in flight (the
//!    outside world — a provider, an SMTP server, a receiver — is called here);
//! 3. **records** the outcomes that are ready in one transaction, so a busy runner pays one
//!    commit for many jobs. If that transaction fails, each outcome is recorded again on its
//!    own, so one bad row costs only its own record (and is repeated after its lease).
//!
//! It wakes on a [`Notify`] (rung by whoever commits new work: the service's event handler or
//! an admin route) and polls every `poll` for work nobody announced (retries falling due). On
//! cancellation it claims nothing more, finishes and records what is in flight, and returns.
//!
//! A service writes only its [`Hooks`]; this crate knows no service.

mod runner;

pub use runner::{Runner, run_once};

use diesel_async::AsyncPgConnection;
use platform::settings::SettingsError;
use std::future::Future;
use std::time::Duration;

/// What a hook may fail with: a database error, a pool error, or the service's own.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// How the runner claims and performs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Rows claimed by one statement (and so, at most, outcomes recorded by one transaction).
    pub batch: usize,
    /// Jobs performed at once.
    pub concurrency: usize,
    /// How long a claimed row stays invisible to other runners: longer than one perform can
    /// take, so a live runner always records before another may take the row.
    pub lease: Duration,
    /// How often to look for due rows when no wake-up comes.
    pub poll: Duration,
}

/// The poll when nobody rings: retries fall due without any event announcing them.
pub const DEFAULT_POLL: Duration = Duration::from_secs(1);

impl Config {
    /// A configuration from a service's settings, refusing zeros by the setting's name.
    pub fn from_settings(
        (batch_key, batch): (&'static str, usize),
        (concurrency_key, concurrency): (&'static str, usize),
        lease: Duration,
    ) -> Result<Self, SettingsError> {
        for (key, value) in [(batch_key, batch), (concurrency_key, concurrency)] {
            if value == 0 {
                return Err(SettingsError::Invalid { key, reason: "must be at least 1".into() });
            }
        }
        Ok(Self { batch, concurrency, lease, poll: DEFAULT_POLL })
    }
}

/// What a service tells the runner. The methods return `Send` futures (implement them with
/// `async fn`) so the runner can be spawned.
pub trait Hooks: Send + Sync + 'static {
    /// One claimed row, with what performing it needs.
    type Job: Send + 'static;
    /// What performing it found out, with what recording it needs.
    type Done: Send + Sync + 'static;
    /// What recording tells [`recorded`](Self::recorded) (e.g. whether an endpoint was disabled).
    type Note: Send + 'static;

    /// For logs: `payment`, `notification`, `webhook`.
    const NAME: &'static str;

    /// Leases up to `limit` due rows for `lease` (one statement, `SKIP LOCKED`).
    fn claim(
        &self,
        conn: &mut AsyncPgConnection,
        limit: usize,
        lease: Duration,
    ) -> impl Future<Output = Result<Vec<Self::Job>, HookError>> + Send;

    /// Does the job's outside work, with no transaction open. `None`: nothing to record (the
    /// job recorded what it had to itself, or gave up and leaves the row to its lease).
    fn perform(&self, job: Self::Job) -> impl Future<Output = Option<Self::Done>> + Send;

    /// Writes one outcome inside the batch's transaction. Must be safe to run twice for the
    /// same row (the lease may have run out and another runner recorded it first): guard every
    /// update on the row's state, as the `mark_*` queries do.
    fn record(
        &self,
        conn: &mut AsyncPgConnection,
        done: &Self::Done,
    ) -> impl Future<Output = Result<Self::Note, HookError>> + Send;

    /// The span [`record`](Self::record) runs in: the job's own trace, so the events it
    /// enqueues carry it on (the outbox takes the current span's `traceparent`). None by
    /// default.
    fn span(&self, done: &Self::Done) -> tracing::Span {
        let _ = done;
        tracing::Span::none()
    }

    /// After the commit: logs and metrics that must not claim more than was stored.
    fn recorded(&self, done: Self::Done, note: Self::Note) {
        let _ = (done, note);
    }

    /// The batch is recorded in this order, so two runners writing overlapping rows (the
    /// same endpoint, say) lock them in the same order and never deadlock: the ids of the
    /// rows it locks, outermost first (`Uuid::as_u128`).
    fn lock_order(&self, done: &Self::Done) -> (u128, u128);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_batch_or_concurrency_is_refused_by_its_setting_name() {
        let lease = Duration::from_secs(60);
        let refused = Config::from_settings(("x_batch", 0), ("x_concurrency", 4), lease);
        assert!(refused.map_err(|e| e.to_string()).err().is_some_and(|e| e.contains("`x_batch`")));
        let refused = Config::from_settings(("x_batch", 20), ("x_concurrency", 0), lease);
        assert!(refused.map_err(|e| e.to_string()).err().is_some_and(|e| e.contains("`x_concurrency`")));
        let config = Config::from_settings(("x_batch", 20), ("x_concurrency", 4), lease);
        assert_eq!(config.map(|c| (c.batch, c.concurrency, c.poll)).ok(), Some((20, 4, DEFAULT_POLL)));
    }
}
