//! `payment.requested` → a pending payment (once per order); `order.cancelled` and
//! `order.failed` (an order that ended without success, whatever ended it: a customer, an
//! operator, a timeout) → remembered, and the payment voided or refunded by the worker; a
//! capture that comes later is refunded too. No provider is called here: the worker
//! does that outside this transaction, woken after commit.

use crate::lifecycle;
use contracts::OrderId;
use contracts::{Envelope, Event};
use diesel_async::AsyncPgConnection;
use messaging::{EventHandler, HandleError};
use std::sync::Arc;
use tokio::sync::Notify;

pub struct PaymentRequests {
    pub provider: &'static str,
    pub wake: Arc<Notify>,
}

impl EventHandler for PaymentRequests {
    const HANDLES: &'static [&'static str] = &["payment.requested", "order.cancelled", "order.failed"];

    async fn handle(
        &self,
        conn: &mut AsyncPgConnection,
        envelope: &Envelope,
        event: Event,
    ) -> Result<(), HandleError> {
        let cause = format!("event:{}", envelope.id);
        match event {
            Event::PaymentRequested(request) => {
                if !lifecycle::request(conn, &request, self.provider, &cause).await? {
                    tracing::info!(order_id = %request.order_id, "order already has a payment; not charging again");
                }
            }
            Event::OrderCancelled(cancelled) => {
                lifecycle::cancel_order(conn, OrderId(cancelled.order_id), envelope.id).await?;
            }
            // A failed order must not keep the customer's money: an open payment (say, one
            // still waiting on 3-D Secure when an operator failed the order) is voided, a
            // captured one refunded. For a payment that itself failed this changes nothing.
            Event::OrderFailed(failed) => {
                lifecycle::cancel_order(conn, OrderId(failed.order_id), envelope.id).await?;
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
    }

    fn after_commit(&self) {
        // notify_one keeps a permit when the worker is busy, so the wake-up is never lost.
        self.wake.notify_one();
    }
}
