//! `payment.requested` → a pending payment (once per order); `order.cancelled` → remembered,
//! and the payment voided or refunded by the worker. No provider is called here: the worker
//! does that outside this transaction, woken after commit.

use crate::lifecycle;
use contracts::{Envelope, Event};
use diesel_async::AsyncPgConnection;
use futures_util::future::BoxFuture;
use messaging::{EventHandler, HandleError};
use std::sync::Arc;
use tokio::sync::Notify;

pub struct PaymentRequests {
    pub provider: &'static str,
    pub wake: Arc<Notify>,
}

impl EventHandler for PaymentRequests {
    fn handle<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        envelope: &'a Envelope,
        event: Event,
    ) -> BoxFuture<'a, Result<(), HandleError>> {
        Box::pin(async move {
            let cause = format!("event:{}", envelope.id);
            match event {
                Event::PaymentRequested(request) => {
                    if !lifecycle::request(conn, &request, self.provider, &cause).await? {
                        tracing::info!(order_id = %request.order_id, "order already has a payment; not charging again");
                    }
                }
                Event::OrderCancelled(cancelled) => {
                    lifecycle::cancel_order(conn, cancelled.order_id, envelope.id).await?;
                }
                other => {
                    return Err(HandleError::Permanent(format!(
                        "payment does not handle `{}` ({})",
                        other.event_type(),
                        envelope.id
                    )));
                }
            }
            Ok(())
        })
    }

    fn after_commit(&self) {
        // notify_one keeps a permit when the worker is busy, so the wake-up is never lost.
        self.wake.notify_one();
    }
}
