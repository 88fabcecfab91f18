//! The delivery worker's hooks for the shared job runner (`jobs`): due deliveries are
//! claimed in batches, each is sent with no transaction open, and each outcome, with its
//! attempt row and events, is recorded with the others ready at the same time in one
//! transaction. The lease on `next_attempt_at` (the request timeout plus a margin) is what
//! keeps other workers off a row in flight. At most `webhook_endpoint_concurrency` deliveries
//! per endpoint are in flight, so a slow receiver holds up only its own deliveries. Delivery
//! is at least once (a crash between a 2xx and its record sends again after the lease), which
//! is why `webhook-id` is stable.

use crate::domain::{AfterFailure, after_failure, next_delay};
use crate::secrets::{Keyring, SealError};
use crate::sender::{Sender, Sent};
use crate::settings::Settings;
use crate::store::{self, Claimed, DisabledReason, NewAttempt};
use crate::{SERVICE, redact};
use contracts::Event;
use contracts::events::{WebhookDelivered, WebhookEndpointDisabled, WebhookFailed};
use diesel_async::AsyncPgConnection;
use jobs::HookError;
use messaging::Outbox;
use platform::settings::SettingsError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tracing::Instrument;
use uuid::Uuid;

/// Every event this worker writes comes from the dispatcher.
const OUTBOX: Outbox = Outbox::new(SERVICE);
/// The lease outlives the request timeout by this much, so a slow but live attempt is always
/// recorded before another worker may take the row.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

pub struct Worker {
    sender: Sender,
    /// Opens the endpoints' sealed signing secrets, just before each attempt.
    keyring: Arc<Keyring>,
    delays: platform::retry::RetrySchedule,
    disable_after: Duration,
    slots: Arc<Slots>,
}

/// Deliveries in flight per endpoint, capped at `per_endpoint`.
struct Slots {
    per_endpoint: usize,
    in_flight: Mutex<HashMap<Uuid, usize>>,
    /// Rung when an endpoint that was at its cap frees a slot: its held-back deliveries are due.
    wake: Arc<Notify>,
}

/// An endpoint's in-flight slot, given back when the attempt is recorded (or dropped).
pub struct Slot {
    slots: Arc<Slots>,
    endpoint: Uuid,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut in_flight = self.slots.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = in_flight.get_mut(&self.endpoint) {
            let was_full = *count >= self.slots.per_endpoint;
            *count = count.saturating_sub(1);
            if *count == 0 {
                in_flight.remove(&self.endpoint);
            }
            if was_full {
                self.slots.wake.notify_one();
            }
        }
    }
}

/// A leased delivery and its endpoint slot.
pub struct Leased {
    delivery: Claimed,
    slot: Slot,
}

/// One attempt made, waiting to be recorded.
pub struct Attempted {
    delivery: Claimed,
    sent: Sent,
    _slot: Slot,
}

/// What recording decided, for the log and `webhook_attempts_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
enum Verdict {
    Delivered,
    RetryScheduled,
    GaveUp,
    Failed,
}

pub struct Recorded {
    verdict: Verdict,
    disabled: Option<(String, DisabledReason)>,
}

impl Worker {
    /// The hooks and the runner's configuration. `wake` is the runner's doorbell, rung here
    /// too when a capped endpoint frees a slot.
    pub fn new(
        settings: &Settings,
        keyring: Arc<Keyring>,
        wake: Arc<Notify>,
    ) -> Result<(Self, jobs::Config), WorkerError> {
        let timeout = settings.timeout()?;
        let slots =
            Slots { per_endpoint: settings.endpoint_concurrency()?, in_flight: Mutex::default(), wake };
        let worker = Self {
            sender: Sender::new(settings.guard()?, timeout)?,
            keyring,
            delays: settings.retry_delays()?,
            disable_after: settings.disable_after(),
            slots: Arc::new(slots),
        };
        Ok((worker, settings.worker(timeout + LEASE_MARGIN)?))
    }

    /// The current secret, then the one rotated out (while it still signs), in plaintext.
    fn open_secrets(&self, delivery: &Claimed) -> Result<Vec<String>, SealError> {
        let mut secrets = vec![self.keyring.open(delivery.endpoint_id, &delivery.secret)?];
        if let Some(previous) = &delivery.previous_secret {
            secrets.push(self.keyring.open(delivery.endpoint_id, previous)?);
        }
        Ok(secrets)
    }
}

impl jobs::Hooks for Worker {
    type Job = Leased;
    type Done = Attempted;
    type Note = Recorded;
    const NAME: &'static str = "webhook";

    /// Leases up to `limit` due deliveries, keeping each endpoint within its in-flight cap
    /// (the excess goes straight back, and is claimed once a slot frees).
    async fn claim(
        &self,
        conn: &mut AsyncPgConnection,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Leased>, HookError> {
        let busy: Vec<Uuid> = {
            let in_flight = self.slots.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
            in_flight.iter().filter(|(_, n)| **n >= self.slots.per_endpoint).map(|(id, _)| *id).collect()
        };
        let claimed = store::claim_due(conn, lease, i64::try_from(limit).unwrap_or(i64::MAX), &busy).await?;
        let (mut kept, mut excess) = (Vec::new(), Vec::new());
        {
            let mut in_flight = self.slots.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
            for delivery in claimed {
                let count = in_flight.entry(delivery.endpoint_id).or_default();
                if *count < self.slots.per_endpoint {
                    *count += 1;
                    let slot = Slot { slots: self.slots.clone(), endpoint: delivery.endpoint_id };
                    kept.push(Leased { delivery, slot });
                } else {
                    excess.push(delivery.id);
                }
            }
        }
        if !excess.is_empty() {
            store::release(conn, &excess).await?;
        }
        Ok(kept)
    }

    async fn perform(&self, Leased { delivery, slot }: Leased) -> Option<Attempted> {
        let span = tracing::info_span!("webhook_attempt", service = SERVICE, delivery_id = %delivery.id, event_id = %delivery.event_id, order_id = ?delivery.order_id, trace_id = tracing::field::Empty);
        if platform::trace::enabled() {
            platform::trace::continue_trace(
                &span,
                platform::trace::traceparent_in_json(&delivery.payload).as_deref(),
            );
        }
        let sent = async {
            match self.open_secrets(&delivery) {
                Ok(secrets) => self.sender.send(&delivery, &secrets).await,
                // Start-up checked every row, so this is a row written since by a replica with
                // another key: retried on the schedule, in case that replica's key gets here too.
                Err(error) => Sent::failed(format!("cannot open the endpoint's signing secret: {error}")),
            }
        }
        .instrument(span)
        .await;
        metrics::histogram!("webhook_attempt_duration_seconds").record(sent.duration.as_secs_f64());
        Some(Attempted { delivery, sent, _slot: slot })
    }

    async fn record(
        &self,
        conn: &mut AsyncPgConnection,
        attempted: &Attempted,
    ) -> Result<Recorded, HookError> {
        let Attempted { delivery, sent, .. } = attempted;
        let attempts = delivery.attempts.saturating_add(1);
        store::insert_attempt(conn, &attempt_row(delivery, sent)).await?;
        let status = sent.status.map(i32::from);
        if let Some(answered) = status.filter(|_| sent.is_success()) {
            if store::mark_delivered(conn, delivery.id, attempts, answered).await? {
                OUTBOX.enqueue(conn, &delivered(delivery)).await?;
            }
            store::endpoint_succeeded(conn, delivery.endpoint_id).await?;
            return Ok(Recorded { verdict: Verdict::Delivered, disabled: None });
        }
        // The sender describes every failure, a non-2xx answer included.
        let error = sent.error.as_deref().unwrap_or("no answer");
        let decision = if sent.refused { AfterFailure::GiveUp } else { after_failure(sent.status) };
        let delay = next_delay(&self.delays, attempts - delivery.schedule_base, sent.retry_after);
        let verdict = match (decision, delay) {
            (AfterFailure::Retry, Some(delay)) => {
                store::schedule_retry(conn, delivery.id, attempts, status, error, delay).await?;
                Verdict::RetryScheduled
            }
            (AfterFailure::Retry | AfterFailure::GiveUp | AfterFailure::DisableEndpoint, _) => {
                if store::mark_failed(conn, delivery.id, attempts, status, error).await? {
                    OUTBOX.enqueue(conn, &failed(delivery, error)).await?;
                }
                if decision == AfterFailure::GiveUp { Verdict::GaveUp } else { Verdict::Failed }
            }
        };
        let disabled = match decision {
            AfterFailure::DisableEndpoint => {
                store::disable_endpoint(conn, delivery.endpoint_id, DisabledReason::Gone)
                    .await?
                    .map(|url| (url, DisabledReason::Gone))
            }
            AfterFailure::Retry | AfterFailure::GiveUp => {
                store::endpoint_failed(conn, delivery.endpoint_id, self.disable_after)
                    .await?
                    .map(|url| (url, DisabledReason::Failing))
            }
        };
        if let Some((url, reason)) = &disabled {
            let event = Event::WebhookEndpointDisabled(WebhookEndpointDisabled {
                endpoint_id: delivery.endpoint_id,
                url: redact::url(url),
                reason: *reason,
            });
            OUTBOX.enqueue(conn, &event).await?;
        }
        Ok(Recorded { verdict, disabled })
    }

    fn recorded(&self, attempted: Attempted, Recorded { verdict, disabled }: Recorded) {
        let label: &'static str = verdict.into();
        let Attempted { delivery, sent, .. } = &attempted;
        let attempts = delivery.attempts.saturating_add(1);
        let (status, error) = (sent.status, sent.error.as_deref().unwrap_or_default());
        tracing::info!(delivery_id = %delivery.id, event_id = %delivery.event_id, attempts, ?status, %error, outcome = label, "webhook attempt");
        if let Some((url, reason)) = disabled {
            // An alert: someone should tell the integrator.
            let url = redact::url(&url);
            tracing::error!(endpoint_id = %delivery.endpoint_id, %url, reason = reason.as_str(), "webhook endpoint disabled");
            metrics::counter!("webhook_endpoints_disabled_total", "reason" => reason.as_str()).increment(1);
        }
        metrics::counter!("webhook_attempts_total", "outcome" => label).increment(1);
    }

    /// Endpoint rows first: deliveries to one endpoint update its row.
    /// `webhook.delivered` / `webhook.failed` continue the event's trace.
    fn span(&self, attempted: &Attempted) -> tracing::Span {
        let delivery = &attempted.delivery;
        let span = tracing::info_span!("webhook_record", service = SERVICE, delivery_id = %delivery.id, order_id = ?delivery.order_id, trace_id = tracing::field::Empty);
        if platform::trace::enabled() {
            platform::trace::continue_trace(
                &span,
                platform::trace::traceparent_in_json(&delivery.payload).as_deref(),
            );
        }
        span
    }

    fn lock_order(&self, attempted: &Attempted) -> (u128, u128) {
        (attempted.delivery.endpoint_id.as_u128(), attempted.delivery.id.as_u128())
    }
}

fn attempt_row<'a>(delivery: &Claimed, sent: &'a Sent) -> NewAttempt<'a> {
    NewAttempt {
        id: Uuid::now_v7(),
        delivery_id: delivery.id,
        attempted_at: sent.started_at,
        status_code: sent.status.map(i32::from),
        duration_ms: i32::try_from(sent.duration.as_millis()).unwrap_or(i32::MAX),
        response_body: sent.response_body.as_deref(),
        error: sent.error.as_deref(),
    }
}

fn delivered(delivery: &Claimed) -> Event {
    Event::WebhookDelivered(WebhookDelivered {
        delivery_id: delivery.id,
        endpoint_id: delivery.endpoint_id,
        event_id: delivery.event_id,
        event_type: delivery.event_type.clone(),
        order_id: delivery.order_id,
    })
}

fn failed(delivery: &Claimed, error: &str) -> Event {
    Event::WebhookFailed(WebhookFailed {
        delivery_id: delivery.id,
        endpoint_id: delivery.endpoint_id,
        event_id: delivery.event_id,
        event_type: delivery.event_type.clone(),
        order_id: delivery.order_id,
        error: error.to_owned(),
    })
}
