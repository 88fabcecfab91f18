//! The delivery worker: leases due deliveries, sends each in its own task, and records each
//! outcome, with its attempt row and events, in one transaction. No transaction or row lock is
//! held while an endpoint is being called; the lease on `next_attempt_at` is what keeps other
//! workers off a row in flight. At most `endpoint_concurrency` deliveries per endpoint are in
//! flight, so a slow receiver holds up only its own deliveries. Delivery is at least once (a
//! crash between a 2xx and its record sends again after the lease), which is why `webhook-id`
//! is stable.

use crate::domain::{AfterFailure, after_failure, next_delay};
use crate::secrets::{Keyring, SealError};
use crate::sender::{Sender, Sent};
use crate::settings::Settings;
use crate::store::{self, Claimed, DisabledReason, NewAttempt};
use crate::{SERVICE, redact};
use contracts::Event;
use contracts::events::{WebhookDelivered, WebhookEndpointDisabled, WebhookFailed};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use messaging::outbox;
use platform::db::{DbError, PgPool};
use platform::settings::SettingsError;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::{Id, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

/// Deliveries in flight at once, over all endpoints.
const MAX_IN_FLIGHT: usize = 64;
/// How often to look for due retries when nothing rings the doorbell.
const TICK: Duration = Duration::from_secs(1);
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
    shared: Arc<Shared>,
    per_endpoint: usize,
    wake: Arc<Notify>,
    cancel: CancellationToken,
}

/// What every send task needs.
struct Shared {
    pool: PgPool,
    sender: Sender,
    /// Opens the endpoints' sealed signing secrets, just before each attempt.
    keyring: Arc<Keyring>,
    delays: platform::retry::RetrySchedule,
    lease: Duration,
    disable_after: Duration,
}

impl Worker {
    pub fn new(
        pool: PgPool,
        settings: &Settings,
        keyring: Arc<Keyring>,
        wake: Arc<Notify>,
        cancel: CancellationToken,
    ) -> Result<Self, WorkerError> {
        let timeout = settings.timeout()?;
        let shared = Shared {
            pool,
            sender: Sender::new(settings.guard()?, timeout)?,
            keyring,
            delays: settings.retry_delays()?,
            lease: timeout + LEASE_MARGIN,
            disable_after: settings.disable_after(),
        };
        Ok(Self { shared: Arc::new(shared), per_endpoint: settings.endpoint_concurrency()?, wake, cancel })
    }

    /// Runs until cancelled; attempts in flight are finished (and recorded) first.
    pub async fn run(self) {
        tracing::info!("webhook delivery worker started");
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut owners: HashMap<Id, Uuid> = HashMap::new();
        let mut in_flight: HashMap<Uuid, usize> = HashMap::new();
        while !self.cancel.is_cancelled() {
            let free = MAX_IN_FLIGHT.saturating_sub(tasks.len());
            let mut more_due = false;
            if free > 0 {
                match self.claim(free, &in_flight).await {
                    Ok((claimed, full)) => {
                        more_due = full;
                        for delivery in claimed {
                            *in_flight.entry(delivery.endpoint_id).or_default() += 1;
                            let endpoint = delivery.endpoint_id;
                            let handle = tasks.spawn(self.shared.clone().attempt(delivery));
                            owners.insert(handle.id(), endpoint);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "leasing webhook deliveries failed; retrying shortly")
                    }
                }
            }
            if more_due {
                continue;
            }
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(TICK) => {}
                Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    let id = done.as_ref().map_or_else(|error| error.id(), |(id, ())| *id);
                    if let Some(endpoint) = owners.remove(&id)
                        && let Some(count) = in_flight.get_mut(&endpoint) {
                        *count = count.saturating_sub(1);
                        if *count == 0 {
                            in_flight.remove(&endpoint);
                        }
                    }
                }
            }
        }
        while tasks.join_next().await.is_some() {}
        tracing::info!("webhook delivery worker stopped");
    }

    /// Leases up to `free` due deliveries, keeping each endpoint within its in-flight cap (the
    /// excess goes straight back). Also says whether the lease was full, i.e. more may be due.
    async fn claim(
        &self,
        free: usize,
        in_flight: &HashMap<Uuid, usize>,
    ) -> Result<(Vec<Claimed>, bool), DbError> {
        let busy: Vec<Uuid> =
            in_flight.iter().filter(|(_, n)| **n >= self.per_endpoint).map(|(id, _)| *id).collect();
        let limit = i64::try_from(free).unwrap_or(i64::MAX);
        let mut conn = self.shared.pool.get().await?;
        let claimed = store::claim_due(&mut conn, self.shared.lease, limit, &busy).await?;
        let full = claimed.len() == free;
        let mut counts = in_flight.clone();
        let (mut kept, mut excess) = (Vec::new(), Vec::new());
        for delivery in claimed {
            let count = counts.entry(delivery.endpoint_id).or_default();
            if *count < self.per_endpoint {
                *count += 1;
                kept.push(delivery);
            } else {
                excess.push(delivery.id);
            }
        }
        if !excess.is_empty() {
            store::release(&mut conn, &excess).await?;
        }
        Ok((kept, full))
    }
}

impl Shared {
    async fn attempt(self: Arc<Self>, delivery: Claimed) {
        let span = tracing::info_span!("webhook_attempt", service = SERVICE, delivery_id = %delivery.id, event_id = %delivery.event_id, order_id = ?delivery.order_id, trace_id = tracing::field::Empty);
        if platform::trace::enabled() {
            platform::trace::continue_trace(
                &span,
                platform::trace::traceparent_in_json(&delivery.payload).as_deref(),
            );
        }
        self.attempt_traced(delivery).instrument(span).await;
    }

    async fn attempt_traced(&self, delivery: Claimed) {
        let sent = match self.open_secrets(&delivery) {
            Ok(secrets) => self.sender.send(&delivery, &secrets).await,
            // Start-up checked every row, so this is a row written since by a replica with
            // another key: retried on the schedule, in case that replica's key gets here too.
            Err(error) => Sent::failed(format!("cannot open the endpoint's signing secret: {error}")),
        };
        metrics::histogram!("webhook_attempt_duration_seconds").record(sent.duration.as_secs_f64());
        if let Err(error) = self.record(&delivery, &sent).await {
            // The lease expires and the row is attempted again; receivers dedupe on webhook-id.
            tracing::warn!(delivery_id = %delivery.id, %error, "could not record a webhook attempt; it will be retried");
        }
    }

    /// The current secret, then the one rotated out (while it still signs), in plaintext.
    fn open_secrets(&self, delivery: &Claimed) -> Result<Vec<String>, SealError> {
        let mut secrets = vec![self.keyring.open(delivery.endpoint_id, &delivery.secret)?];
        if let Some(previous) = &delivery.previous_secret {
            secrets.push(self.keyring.open(delivery.endpoint_id, previous)?);
        }
        Ok(secrets)
    }

    async fn record(&self, delivery: &Claimed, sent: &Sent) -> Result<(), DbError> {
        let attempts = delivery.attempts.saturating_add(1);
        let mut pooled = self.pool.get().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let (label, disabled) = conn
            .transaction(async |conn: &mut AsyncPgConnection| {
                store::insert_attempt(conn, &attempt_row(delivery, sent)).await?;
                let error = sent.error.as_deref().unwrap_or("failed");
                let status = sent.status.map(i32::from);
                if sent.is_success() {
                    if store::mark_delivered(conn, delivery.id, attempts, status.unwrap_or(200)).await? {
                        outbox::enqueue(conn, SERVICE, &delivered(delivery)).await?;
                    }
                    store::endpoint_succeeded(conn, delivery.endpoint_id).await?;
                    return Ok(("delivered", None));
                }
                let decision = if sent.refused { AfterFailure::GiveUp } else { after_failure(sent.status) };
                let delay = next_delay(&self.delays, attempts - delivery.schedule_base, sent.retry_after);
                let label = match (decision, delay) {
                    (AfterFailure::Retry, Some(delay)) => {
                        store::schedule_retry(conn, delivery.id, attempts, status, error, delay).await?;
                        "retry_scheduled"
                    }
                    (AfterFailure::Retry | AfterFailure::GiveUp | AfterFailure::DisableEndpoint, _) => {
                        if store::mark_failed(conn, delivery.id, attempts, status, error).await? {
                            outbox::enqueue(conn, SERVICE, &failed(delivery, error)).await?;
                        }
                        if decision == AfterFailure::GiveUp { "gave_up" } else { "failed" }
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
                        reason: reason.as_str().to_owned(),
                    });
                    outbox::enqueue(conn, SERVICE, &event).await?;
                }
                Ok::<_, diesel::result::Error>((label, disabled))
            })
            .await?;
        let (status, error) = (sent.status, sent.error.as_deref().unwrap_or_default());
        tracing::info!(delivery_id = %delivery.id, event_id = %delivery.event_id, attempts, ?status, %error, outcome = label, "webhook attempt");
        if let Some((url, reason)) = disabled {
            // An alert: someone should tell the integrator.
            let url = redact::url(&url);
            tracing::error!(endpoint_id = %delivery.endpoint_id, %url, reason = reason.as_str(), "webhook endpoint disabled");
            metrics::counter!("webhook_endpoints_disabled_total", "reason" => reason.as_str()).increment(1);
        }
        metrics::counter!("webhook_attempts_total", "outcome" => label).increment(1);
        Ok(())
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
