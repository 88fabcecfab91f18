//! The delivery worker: leases due notifications, sends each on its channel with no
//! transaction open, then records the attempt, the outcome and its event in one transaction.

use crate::SERVICE;
use crate::channels::{Channels, Delivered, Outgoing, SendError};
use crate::domain::{Channel, parse_kind};
use crate::store::{self, Claimed};
use contracts::Event;
use contracts::events::{NotificationFailed, NotificationKind, NotificationSent};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures_util::StreamExt;
use messaging::outbox;
use platform::db::PgPool;
use platform::retry::RetrySchedule;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Rows leased per round.
const BATCH: i64 = 20;
/// Messages in flight at once; SMTP pools connections, so a few run side by side.
const CONCURRENCY: usize = 4;
/// The fallback when no wake-up comes: retries fall due without any event announcing them.
const POLL: Duration = Duration::from_secs(1);

pub struct Sender {
    pub pool: PgPool,
    pub channels: Channels,
    /// The waits between attempts: n delays, n + 1 attempts.
    pub retry_delays: RetrySchedule,
    /// Signalled by the consumer after it commits new notifications.
    pub wake: Arc<Notify>,
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
    /// As stored in `notification_attempts.outcome`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Sent { .. } => "sent",
            Outcome::Logged { .. } => "logged",
            Outcome::Retry { .. } => "retry",
            Outcome::Failed { .. } => "failed",
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

impl Sender {
    pub async fn run(self, cancel: CancellationToken) {
        tracing::info!("notification sender started");
        while !cancel.is_cancelled() {
            let claimed = match self.claim().await {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(%error, "cannot claim notifications; will retry");
                    Vec::new()
                }
            };
            let full = claimed.len() as i64 == BATCH;
            futures_util::stream::iter(claimed)
                .for_each_concurrent(CONCURRENCY, |row| self.deliver(row))
                .await;
            if full {
                // More may be due right now; waiting would only add latency.
                continue;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = cancel.cancelled() => {}
            }
        }
        tracing::info!("notification sender stopped");
    }

    async fn claim(&self) -> anyhow::Result<Vec<Claimed>> {
        let mut conn = self.pool.get().await?;
        Ok(store::claim_due(&mut conn, BATCH).await?)
    }

    async fn deliver(&self, row: Claimed) {
        let span = tracing::info_span!("notification", service = SERVICE, notification_id = %row.id, order_id = %row.order_id, kind = %row.kind, trace_id = tracing::field::Empty);
        platform::trace::continue_trace(&span, row.traceparent.as_deref());
        self.deliver_traced(row).instrument(span).await;
    }

    async fn deliver_traced(&self, row: Claimed) {
        let message = Outgoing {
            id: row.id,
            recipient: &row.recipient,
            subject: &row.subject,
            body: &row.body,
            html_body: row.html_body.as_deref(),
        };
        let result = match Channel::parse(&row.channel) {
            Some(channel) => self.channels.get(channel).send(message).await,
            // The column's CHECK makes this a corrupt row: no point retrying it.
            None => Err(SendError::Permanent(format!("unknown channel `{}`", row.channel))),
        };
        let outcome = outcome(result, row.attempts, &self.retry_delays, rand::random::<f64>());
        metrics::counter!(
            "notification_attempts_total",
            "kind" => row.kind.clone(),
            "channel" => row.channel.clone(),
            "outcome" => outcome.label()
        )
        .increment(1);
        if let Err(error) = self.record(&row, &outcome).await {
            // The lease runs out and the row is tried again; at worst the message goes out
            // twice (an email with the same Message-ID).
            tracing::warn!(notification_id = %row.id, %error, "cannot record the attempt; it will be repeated");
            return;
        }
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

    async fn record(&self, row: &Claimed, outcome: &Outcome) -> anyhow::Result<()> {
        // Rows are only written by our own consumer, so an unknown kind means a corrupt row.
        let kind = parse_kind(&row.kind).ok_or_else(|| anyhow::anyhow!("unknown kind `{}`", row.kind))?;
        let mut pooled = self.pool.get().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction(async |conn: &mut AsyncPgConnection| {
            let (error, provider) = match outcome {
                Outcome::Sent { provider } | Outcome::Logged { provider } => (None, Some(*provider)),
                Outcome::Retry { error, .. } | Outcome::Failed { error } => (Some(error.as_str()), None),
            };
            store::record_attempt(conn, row.id, outcome.label(), error, provider).await?;
            match outcome {
                Outcome::Sent { provider } => {
                    if store::mark_delivered(conn, row.id, "sent", provider).await? {
                        outbox::enqueue(conn, SERVICE, &sent_event(row, kind)).await?;
                    }
                }
                // Not announced as `notification.sent`: nothing was sent. The row says `logged`
                // and names the provider, for the operator.
                Outcome::Logged { provider } => {
                    store::mark_delivered(conn, row.id, "logged", provider).await?;
                }
                Outcome::Retry { error, delay_ms } => {
                    store::schedule_retry(conn, row.id, error, *delay_ms).await?;
                }
                Outcome::Failed { error } => {
                    if store::mark_failed(conn, row.id, error).await? {
                        outbox::enqueue(conn, SERVICE, &failed_event(row, kind, error)).await?;
                    }
                }
            }
            Ok::<_, diesel::result::Error>(())
        })
        .await?;
        Ok(())
    }
}

fn sent_event(row: &Claimed, kind: NotificationKind) -> Event {
    Event::NotificationSent(NotificationSent {
        notification_id: row.id,
        order_id: row.order_id,
        kind,
        channel: row.channel.clone(),
    })
}

fn failed_event(row: &Claimed, kind: NotificationKind, error: &str) -> Event {
    Event::NotificationFailed(NotificationFailed {
        notification_id: row.id,
        order_id: row.order_id,
        kind,
        channel: row.channel.clone(),
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
        assert_eq!(logged.label(), "logged");
    }
}
