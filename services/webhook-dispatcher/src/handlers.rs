//! Fan-out: each webhook-worthy event becomes one pending delivery per subscribed endpoint,
//! written inside the consumer's transaction with the inbox row. Sending happens later, in the
//! worker, so a slow endpoint never holds up the queue.

use crate::store::{self, Fanout};
use contracts::events::WEBHOOK_EVENT_TYPES;
use contracts::{Envelope, Event};
use diesel_async::AsyncPgConnection;
use futures_util::future::BoxFuture;
use messaging::{EventHandler, HandleError};
use std::sync::Arc;
use tokio::sync::Notify;

pub struct WebhookEvents {
    wake: Arc<Notify>,
}

impl WebhookEvents {
    /// `wake` is the delivery worker's doorbell, rung after each committed batch.
    pub fn new(wake: Arc<Notify>) -> Self {
        Self { wake }
    }
}

impl EventHandler for WebhookEvents {
    fn handle<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        envelope: &'a Envelope,
        event: Event,
    ) -> BoxFuture<'a, Result<(), HandleError>> {
        Box::pin(async move {
            if !WEBHOOK_EVENT_TYPES.contains(&event.event_type()) {
                return Err(HandleError::Permanent(format!(
                    "webhook-dispatcher does not handle `{}` (event {})",
                    event.event_type(),
                    envelope.id
                )));
            }
            // The envelope as received is what integrators get: the same CloudEvent, same id.
            let payload = envelope.to_bytes();
            let queued = store::fan_out(
                conn,
                &Fanout {
                    event_id: envelope.id,
                    event_type: event.event_type(),
                    order_id: event.order_id(),
                    payload: &payload,
                },
            )
            .await?;
            tracing::debug!(event_id = %envelope.id, event_type = %envelope.event_type, queued, "webhook deliveries queued");
            Ok(())
        })
    }

    fn after_commit(&self) {
        // `notify_one` stores a permit when the worker is busy, so the wake-up is never lost.
        self.wake.notify_one();
    }
}
