//! The delivery worker: leases due deliveries, POSTs them signed, and records each outcome,
//! with its `webhook.delivered` / `webhook.failed` event, in one transaction. No transaction
//! or row lock is held while an endpoint is being called; the lease on `next_attempt_at` is
//! what keeps other workers off a row in flight. Delivery is at least once (a crash between a
//! 2xx and its record sends again after the lease), which is why `webhook-id` is stable.

use crate::domain::{jittered, retry_delay};
use crate::settings::Settings;
use crate::store::{self, Claimed};
use crate::{SERVICE, signing};
use contracts::Event;
use contracts::events::{WebhookDelivered, WebhookFailed};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures_util::future::join_all;
use messaging::outbox;
use platform::db::{DbError, PgPool};
use platform::settings::SettingsError;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Deliveries leased per round.
const BATCH: i64 = 20;
/// How often to look for due retries when nothing rings the doorbell.
const TICK: Duration = Duration::from_secs(1);
/// The lease outlives the request timeout by this much, so a slow but live attempt is always
/// recorded before another worker may take the row.
const LEASE_MARGIN: Duration = Duration::from_secs(30);
const MAX_ERROR_CHARS: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

pub struct Worker {
    pool: PgPool,
    client: reqwest::Client,
    delays: Vec<Duration>,
    lease: Duration,
    wake: Arc<Notify>,
    cancel: CancellationToken,
}

#[derive(Debug)]
enum Outcome {
    Delivered { status: u16 },
    Failed { status: Option<u16>, error: String },
}

/// One client for every request: its connection pool is shared, redirects are not followed (a
/// redirect is the endpoint's misconfiguration, and following it could carry the signed body
/// somewhere unintended).
pub fn http_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("orders-webhook-dispatcher/", env!("CARGO_PKG_VERSION")))
        .build()
}

impl Worker {
    pub fn new(
        pool: PgPool,
        settings: &Settings,
        wake: Arc<Notify>,
        cancel: CancellationToken,
    ) -> Result<Self, WorkerError> {
        let timeout = settings.timeout()?;
        Ok(Self {
            pool,
            client: http_client(timeout)?,
            delays: settings.retry_delays()?,
            lease: timeout + LEASE_MARGIN,
            wake,
            cancel,
        })
    }

    /// Runs until cancelled; a round in flight is finished (and recorded) first.
    pub async fn run(self) {
        tracing::info!("webhook delivery worker started");
        while !self.cancel.is_cancelled() {
            let claimed = match self.round().await {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(%error, "webhook delivery round failed; retrying shortly");
                    0
                }
            };
            // A full batch means more may be due right now.
            if claimed as i64 >= BATCH {
                continue;
            }
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(TICK) => {}
            }
        }
        tracing::info!("webhook delivery worker stopped");
    }

    async fn round(&self) -> Result<usize, DbError> {
        // The claim is one autocommitted statement; the connection goes back before any HTTP.
        let claimed = {
            let mut conn = self.pool.get().await?;
            store::claim_due(&mut conn, self.lease, BATCH).await?
        };
        let count = claimed.len();
        join_all(claimed.into_iter().map(|delivery| self.attempt(delivery))).await;
        Ok(count)
    }

    async fn attempt(&self, delivery: Claimed) {
        let started = Instant::now();
        let outcome = self.send(&delivery).await;
        metrics::histogram!("webhook_attempt_duration_seconds").record(started.elapsed().as_secs_f64());
        if let Err(error) = self.record(&delivery, outcome).await {
            // The lease expires and the row is attempted again; receivers dedupe on webhook-id.
            tracing::warn!(delivery_id = %delivery.id, %error, "could not record a webhook attempt; it will be retried");
        }
    }

    async fn send(&self, delivery: &Claimed) -> Outcome {
        let id = delivery.event_id.to_string();
        let timestamp = chrono::Utc::now().timestamp();
        let headers = match signing::headers(&delivery.secret, &id, timestamp, &delivery.payload) {
            Ok(headers) => headers,
            Err(error) => {
                return Outcome::Failed {
                    status: None,
                    error: error.to_string(),
                };
            }
        };
        let mut request = self
            .client
            .post(&delivery.url)
            .header(reqwest::header::CONTENT_TYPE, contracts::envelope::CONTENT_TYPE);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        match request.body(delivery.payload.clone()).send().await {
            Ok(response) if response.status().is_success() => Outcome::Delivered {
                status: response.status().as_u16(),
            },
            Ok(response) => {
                let status = response.status();
                Outcome::Failed {
                    status: Some(status.as_u16()),
                    error: format!("endpoint answered HTTP {status}"),
                }
            }
            Err(error) => Outcome::Failed {
                status: None,
                error: describe(&error),
            },
        }
    }

    async fn record(&self, delivery: &Claimed, outcome: Outcome) -> Result<(), DbError> {
        let attempts = delivery.attempts.saturating_add(1);
        let mut pooled = self.pool.get().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let label = conn
            .transaction(async |conn: &mut AsyncPgConnection| match &outcome {
                Outcome::Delivered { status } => {
                    if store::mark_delivered(conn, delivery.id, attempts, i32::from(*status)).await? {
                        outbox::enqueue(conn, SERVICE, &delivered(delivery)).await?;
                    }
                    Ok("delivered")
                }
                Outcome::Failed { status, error } => {
                    let status = status.map(i32::from);
                    match retry_delay(&self.delays, attempts) {
                        Some(delay) => {
                            store::schedule_retry(
                                conn,
                                delivery.id,
                                attempts,
                                status,
                                error,
                                jittered(delay),
                            )
                            .await?;
                            Ok("retry_scheduled")
                        }
                        None => {
                            if store::mark_failed(conn, delivery.id, attempts, status, error).await? {
                                outbox::enqueue(conn, SERVICE, &failed(delivery, error)).await?;
                            }
                            Ok::<_, diesel::result::Error>("failed")
                        }
                    }
                }
            })
            .await?;
        match &outcome {
            Outcome::Delivered { status } => {
                tracing::info!(delivery_id = %delivery.id, event_id = %delivery.event_id, attempts, status, "webhook delivered");
            }
            Outcome::Failed { error, .. } => {
                tracing::info!(delivery_id = %delivery.id, event_id = %delivery.event_id, attempts, %error, outcome = label, "webhook attempt failed");
            }
        }
        metrics::counter!("webhook_attempts_total", "outcome" => label).increment(1);
        Ok(())
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

/// reqwest's own message hides the cause ("error sending request"); the chain names it
/// (connection refused, timed out, certificate invalid), which is what an integrator needs.
fn describe(error: &reqwest::Error) -> String {
    let mut message = if error.is_timeout() {
        format!("timed out: {error}")
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message.chars().take(MAX_ERROR_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_client_builds_and_reports_refused_connections() {
        let client = http_client(Duration::from_secs(2));
        assert!(client.is_ok());
        let Ok(client) = client else { return };
        // Port 9 (discard) on localhost is closed on any sane test machine.
        let error = client
            .post("http://127.0.0.1:9/")
            .send()
            .await
            .err()
            .map(|e| describe(&e))
            .unwrap_or_default();
        assert!(!error.is_empty());
        assert!(error.chars().count() <= MAX_ERROR_CHARS);
    }
}
