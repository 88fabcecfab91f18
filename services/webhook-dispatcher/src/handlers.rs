//! Fan-out: each webhook-worthy event becomes one pending delivery per subscribed endpoint,
//! written inside the consumer's transaction with the inbox row. Sending happens later, in the
//! worker, so a slow endpoint never holds up the queue.

use crate::store::{self, Fanout};
use contracts::events::WEBHOOK_EVENT_TYPES;
use contracts::{Envelope, Event};
use diesel_async::AsyncPgConnection;
use messaging::{EventHandler, HandleError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;

pub struct WebhookEvents {
    wake: Arc<Notify>,
    /// Whether a delivery was queued since the last wake-up: with no endpoint subscribed (the
    /// common case for most event types) the worker is not woken to claim nothing.
    queued_any: AtomicBool,
}

impl WebhookEvents {
    /// `wake` is the delivery worker's doorbell, rung after each committed batch.
    pub fn new(wake: Arc<Notify>) -> Self {
        Self { wake, queued_any: AtomicBool::new(false) }
    }
}

impl EventHandler for WebhookEvents {
    const HANDLES: &'static [&'static str] = WEBHOOK_EVENT_TYPES;

    async fn handle(
        &self,
        conn: &mut AsyncPgConnection,
        envelope: &Envelope,
        event: Event,
    ) -> Result<(), HandleError> {
        if !WEBHOOK_EVENT_TYPES.contains(&event.event_type()) {
            return Err(HandleError::Permanent(format!(
                "webhook-dispatcher does not handle `{}` (event {})",
                event.event_type(),
                envelope.id
            )));
        }
        // The envelope as received is what integrators get: the same CloudEvent, same id,
        // less what is meant for the customer alone.
        let payload = for_receivers(envelope).to_bytes();
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
        if queued > 0 {
            // Set even if the batch's transaction is then re-run or rolled back: one spurious
            // wake-up at worst, never a missed one.
            self.queued_any.store(true, Ordering::Release);
        }
        Ok(())
    }

    fn after_commit(&self) {
        // `notify_one` stores a permit when the worker is busy, so the wake-up is never lost.
        if self.queued_any.swap(false, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }
}

/// The envelope as webhook receivers get it: without `data.order_link` (`order.confirmed` of a
/// guest order), which carries the order's access token. A receiver is a third party; the link
/// would let it (and whoever reads its logs) open and cancel the guest's order. Dropped before
/// the payload is stored, so the token is not kept here either.
fn for_receivers(envelope: &contracts::Envelope) -> std::borrow::Cow<'_, contracts::Envelope> {
    const CUSTOMER_ONLY: &[&str] = &["order_link"];
    let Some(data) = envelope.data.as_object() else { return std::borrow::Cow::Borrowed(envelope) };
    if !CUSTOMER_ONLY.iter().any(|field| data.contains_key(*field)) {
        return std::borrow::Cow::Borrowed(envelope);
    }
    let mut trimmed = envelope.clone();
    if let Some(data) = trimmed.data.as_object_mut() {
        for field in CUSTOMER_ONLY {
            data.remove(*field);
        }
    }
    std::borrow::Cow::Owned(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_order_link_never_reaches_a_receiver() {
        let mut envelope = contracts::Envelope {
            specversion: contracts::envelope::SPEC_VERSION.into(),
            id: uuid::Uuid::now_v7(),
            source: "order-api".into(),
            event_type: "order.confirmed".into(),
            time: chrono::Utc::now(),
            subject: None,
            datacontenttype: contracts::envelope::CONTENT_TYPE.into(),
            dataschema: contracts::envelope::schema_uri("order.confirmed", 1),
            traceparent: None,
            data: serde_json::json!({"order_id": uuid::Uuid::nil()}),
        };
        envelope.data["order_link"] = serde_json::json!("https://shop/api/v1/orders/x?access_token=secret");
        let sent = String::from_utf8(for_receivers(&envelope).to_bytes()).unwrap_or_default();
        assert!(!sent.contains("order_link") && !sent.contains("secret"), "{sent}");
        assert!(sent.contains(&envelope.id.to_string()), "the same event id");
        envelope.data.as_object_mut().map(|data| data.remove("order_link"));
        assert!(matches!(for_receivers(&envelope), std::borrow::Cow::Borrowed(_)), "untouched otherwise");
    }
}
