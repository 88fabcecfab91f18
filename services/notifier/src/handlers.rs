//! Turning order outcomes into notifications to send. Each runs inside the consumer's
//! transaction with the inbox row; the email itself goes out later, from the sender, so a slow
//! mail server never holds up the queue.

use crate::domain;
use crate::store;
use contracts::{Envelope, Event};
use diesel_async::AsyncPgConnection;
use futures_util::future::BoxFuture;
use messaging::{EventHandler, HandleError};
use std::sync::Arc;
use tokio::sync::Notify;

pub struct OrderOutcomes {
    /// Wakes the sender once new rows are committed, so emails leave without waiting for a poll.
    pub wake: Arc<Notify>,
}

impl EventHandler for OrderOutcomes {
    fn handle<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        envelope: &'a Envelope,
        event: Event,
    ) -> BoxFuture<'a, Result<(), HandleError>> {
        Box::pin(async move {
            let (order_id, rendered) = match event {
                Event::OrderConfirmed(order) => (order.order_id, domain::invoice(&order)),
                Event::OrderFailed(order) => (order.order_id, domain::failure_notice(&order)),
                other => {
                    return Err(HandleError::Permanent(format!(
                        "notifier does not handle `{}` (event {})",
                        other.event_type(),
                        envelope.id
                    )));
                }
            };
            // The unique (order, kind, channel) key, not the inbox alone, guarantees one email:
            // a replay under a new event id lands here too.
            if !store::insert(conn, order_id, &rendered).await? {
                tracing::info!(%order_id, kind = domain::kind_str(rendered.kind), "notification already recorded; ignoring repeat");
            }
            Ok(())
        })
    }

    fn after_commit(&self) {
        // notify_one keeps a permit when the sender is busy, so the wake-up is never lost.
        self.wake.notify_one();
    }
}
