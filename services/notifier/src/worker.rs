//! The delivery worker's hooks for the shared job runner (`jobs`): due notifications are
//! claimed in batches, each is sent on its channel with no transaction open, and the attempts,
//! outcomes and their events are recorded together in one transaction.

use crate::SERVICE;
use crate::channels::{Channels, Delivered, Outgoing, SendError};
use crate::store::{self, AttemptOutcome, Claimed, NotificationStatus};
use contracts::Event;
use contracts::events::{NotificationFailed, NotificationKind, NotificationSent};
use diesel_async::AsyncPgConnection;
use jobs::HookError;
use messaging::Outbox;
use platform::retry::RetrySchedule;
use std::time::Duration;
use tracing::Instrument;

/// Every event this worker writes comes from the notifier.
const OUTBOX: Outbox = Outbox::new(SERVICE);

pub struct Worker {
    pub channels: Channels,
    /// The waits between attempts: n delays, n + 1 attempts.
    pub retry_delays: RetrySchedule,
}

/// One attempt, sent and waiting to be recorded.
pub struct Attempted {
    row: Claimed,
    outcome: Outcome,
}

/// What to write after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Sent {
        provider: &'static str,
    },
    /// A log-only provider took it: nothing left the building.
    Logged {
        provider: &'static str,
    },
    Retry {
        error: String,
        delay_ms: i64,
    },
    Failed {
        error: String,
    },
}

impl Outcome {
    /// As stored in `notification_attempts.outcome` (and counted by that name).
    pub fn label(&self) -> AttemptOutcome {
        match self {
            Outcome::Sent { .. } => AttemptOutcome::Sent,
            Outcome::Logged { .. } => AttemptOutcome::Logged,
            Outcome::Retry { .. } => AttemptOutcome::Retry,
            Outcome::Failed { .. } => AttemptOutcome::Failed,
        }
    }
}

/// Decides what an attempt's result means for a row that had `attempts_before` attempts.
/// `jitter` in [0, 1] lengthens the wait by up to 20 % (see `platform::retry`).
pub fn outcome(
    result: Result<Delivered, SendError>,
    attempts_before: i32,
    schedule: &RetrySchedule,
    jitter: f64,
) -> Outcome {
    match result {
        Ok(Delivered { provider, only_logged: false }) => Outcome::Sent { provider },
        Ok(Delivered { provider, only_logged: true }) => Outcome::Logged { provider },
        Err(SendError::Permanent(error)) => Outcome::Failed { error },
        Err(SendError::Transient(error)) => {
            let attempts = u32::try_from(attempts_before).unwrap_or(0).saturating_add(1);
            match schedule.delay_after(attempts) {
                Some(delay) => {
                    let delay = platform::retry::jittered(delay, jitter);
                    let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX).max(1);
                    Outcome::Retry { error, delay_ms }
                }
                None => Outcome::Failed { error: format!("gave up after {attempts} attempts: {error}") },
            }
        }
    }
}

impl jobs::Hooks for Worker {
    type Job = Claimed;
    type Done = Attempted;
    type Note = ();
    const NAME: &'static str = "notification";

    async fn claim(
        &self,
        conn: &mut AsyncPgConnection,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claimed>, HookError> {
        Ok(store::claim_due(conn, i64::try_from(limit).unwrap_or(i64::MAX), lease).await?)
    }

    async fn perform(&self, row: Claimed) -> Option<Attempted> {
        let span = tracing::info_span!("notification", service = SERVICE, notification_id = %row.id, order_id = %row.order_id, kind = %row.kind, trace_id = tracing::field::Empty);
        platform::trace::continue_trace(&span, row.traceparent.as_deref());
        let outcome = self.send(&row).instrument(span).await;
        Some(Attempted { row, outcome })
    }

    async fn record(&self, conn: &mut AsyncPgConnection, attempted: &Attempted) -> Result<(), HookError> {
        let Attempted { row, outcome } = attempted;
        let kind = row.kind;
        let (error, provider) = match outcome {
            Outcome::Sent { provider } | Outcome::Logged { provider } => (None, Some(*provider)),
            Outcome::Retry { error, .. } | Outcome::Failed { error } => (Some(error.as_str()), None),
        };
        store::record_attempt(conn, row.id, outcome.label(), error, provider).await?;
        match outcome {
            Outcome::Sent { provider } => {
                // Account messages are not about an order: nobody waits for their announcement.
                if store::mark_delivered(conn, row.id, NotificationStatus::Sent, provider).await?
                    && kind.is_about_an_order()
                {
                    OUTBOX.enqueue(conn, &sent_event(row, kind)).await?;
                }
            }
            // Not announced as `notification.sent`: nothing was sent. The row says `logged`
            // and names the provider, for the operator.
            Outcome::Logged { provider } => {
                store::mark_delivered(conn, row.id, NotificationStatus::Logged, provider).await?;
            }
            Outcome::Retry { error, delay_ms } => {
                store::schedule_retry(conn, row.id, error, *delay_ms).await?;
            }
            Outcome::Failed { error } => {
                if store::mark_failed(conn, row.id, error).await? && kind.is_about_an_order() {
                    OUTBOX.enqueue(conn, &failed_event(row, kind, error)).await?;
                }
            }
        }
        Ok(())
    }

    /// `notification.sent` / `notification.failed` continue the order's trace.
    fn span(&self, attempted: &Attempted) -> tracing::Span {
        let row = &attempted.row;
        let span = tracing::info_span!("notification_record", service = SERVICE, notification_id = %row.id, order_id = %row.order_id, trace_id = tracing::field::Empty);
        platform::trace::continue_trace(&span, row.traceparent.as_deref());
        span
    }

    fn recorded(&self, Attempted { row, outcome }: Attempted, (): ()) {
        match outcome {
            Outcome::Sent { provider } => {
                tracing::info!(notification_id = %row.id, order_id = %row.order_id, kind = %row.kind, channel = %row.channel, provider, "notification sent")
            }
            Outcome::Logged { provider } => {
                tracing::info!(notification_id = %row.id, order_id = %row.order_id, kind = %row.kind, channel = %row.channel, provider, "notification only logged: no provider configured")
            }
            Outcome::Retry { error, delay_ms } => {
                tracing::warn!(notification_id = %row.id, %error, delay_ms, "notification attempt failed; will retry")
            }
            Outcome::Failed { error } => {
                tracing::warn!(notification_id = %row.id, %error, "notification failed")
            }
        }
    }

    fn lock_order(&self, attempted: &Attempted) -> (u128, u128) {
        (attempted.row.id.as_u128(), 0)
    }
}

impl Worker {
    /// Sends `row` on its channel and says what to record. If the record is lost (a crash, a
    /// database error), the lease runs out and the row is tried again: at worst the message
    /// goes out twice (an email with the same Message-ID).
    async fn send(&self, row: &Claimed) -> Outcome {
        let message = Outgoing {
            id: row.id,
            recipient: &row.recipient,
            subject: &row.subject,
            body: &row.body,
            html_body: row.html_body.as_deref(),
        };
        let result = self.channels.get(row.channel).send(message).await;
        let outcome = outcome(result, row.attempts, &self.retry_delays, rand::random::<f64>());
        metrics::counter!(
            "notification_attempts_total",
            "kind" => row.kind.as_str(),
            "channel" => row.channel.as_str(),
            "outcome" => <&'static str>::from(outcome.label())
        )
        .increment(1);
        outcome
    }
}

fn sent_event(row: &Claimed, kind: NotificationKind) -> Event {
    Event::NotificationSent(NotificationSent {
        notification_id: row.id,
        order_id: row.order_id,
        kind,
        channel: row.channel,
    })
}

fn failed_event(row: &Claimed, kind: NotificationKind, error: &str) -> Event {
    Event::NotificationFailed(NotificationFailed {
        notification_id: row.id,
        order_id: row.order_id,
        kind,
        channel: row.channel,
        error: error.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delays() -> RetrySchedule {
        RetrySchedule::new([2000, 4000, 8000].into_iter().map(Duration::from_millis).collect())
    }

    fn transient() -> Result<Delivered, SendError> {
        Err(SendError::Transient("421 try later".into()))
    }

    fn retry(delay_ms: i64) -> Outcome {
        Outcome::Retry { error: "421 try later".into(), delay_ms }
    }

    /// Issue 10: `2000,4000,8000` used to give up on the third attempt, never waiting 8 s.
    #[test]
    fn notifier_fixes_three_delays_make_four_attempts_and_the_last_delay_is_used() {
        assert_eq!(outcome(transient(), 0, &delays(), 0.0), retry(2000));
        assert_eq!(outcome(transient(), 1, &delays(), 1.0), retry(4800), "jitter lengthens by up to 20 %");
        assert_eq!(outcome(transient(), 2, &delays(), 0.0), retry(8000));
        assert_eq!(
            outcome(transient(), 3, &delays(), 0.0),
            Outcome::Failed { error: "gave up after 4 attempts: 421 try later".into() }
        );
    }

    #[test]
    fn permanent_failures_are_final_at_once_and_success_is_success() {
        let permanent = Err(SendError::Permanent("550 no such user".into()));
        assert_eq!(
            outcome(permanent, 0, &delays(), 0.0),
            Outcome::Failed { error: "550 no such user".into() }
        );
        assert_eq!(
            outcome(Ok(Delivered::sent("smtp")), 2, &delays(), 0.0),
            Outcome::Sent { provider: "smtp" }
        );
    }

    /// Issue 10: the log-only SMS provider used to be recorded as `sent`.
    #[test]
    fn notifier_fixes_a_log_only_delivery_is_logged_not_sent() {
        let logged = outcome(Ok(Delivered::logged("log")), 0, &delays(), 0.0);
        assert_eq!(logged, Outcome::Logged { provider: "log" });
        assert_eq!(logged.label(), AttemptOutcome::Logged);
    }
}
