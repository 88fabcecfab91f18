//! Turning order outcomes and account events (verification, password reset) into
//! notifications to send. Each runs inside the consumer's
//! transaction with the inbox row; the messages themselves go out later, from the sender, so a
//! slow mail server never holds up the queue.

use crate::domain::Rendered;
use crate::messages;
use crate::store::{self, ledger};
use contracts::{Envelope, Event};
use diesel_async::AsyncPgConnection;
use messaging::{EventHandler, HandleError};
use std::sync::Arc;
use tokio::sync::Notify;
use uuid::Uuid;

pub struct OrderOutcomes {
    /// Wakes the sender once new rows are committed, so messages leave without waiting for a poll.
    pub wake: Arc<Notify>,
}

impl EventHandler for OrderOutcomes {
    const HANDLES: &'static [&'static str] = &[
        "order.confirmed",
        "order.failed",
        "order.cancelled",
        "payment.refunded",
        "account.registered",
        "account.password_reset_requested",
    ];

    async fn handle(
        &self,
        conn: &mut AsyncPgConnection,
        envelope: &Envelope,
        event: Event,
    ) -> Result<(), HandleError> {
        let (order_id, rendered) = render(conn, envelope, event).await?;
        record(conn, order_id, &rendered).await
    }

    fn after_commit(&self) {
        // notify_one keeps a permit when the sender is busy, so the wake-up is never lost.
        self.wake.notify_one();
    }
}

/// Notes the order in the ledger and renders the message the event calls for, with the key
/// that makes it go out once: the order id, or for account messages the token id (the token
/// itself stays in the message body only).
async fn render(
    conn: &mut AsyncPgConnection,
    envelope: &Envelope,
    event: Event,
) -> Result<(Uuid, Rendered), HandleError> {
    let at = Some(envelope.time);
    match event {
        Event::OrderConfirmed(order) => {
            let entry = ledger::Entry {
                currency: Some(order.currency.to_string()),
                total_amount: Some(order.total_amount.as_decimal().clone()),
                confirmed_at: at,
                ..ledger::Entry::default()
            };
            ledger::record(conn, order.order_id, &order.customer, entry).await?;
            Ok((order.order_id, messages::invoice(&order)))
        }
        Event::OrderFailed(order) => {
            let entry = ledger::Entry {
                failed_at: at,
                failure_reason: Some(order.reason.as_str().to_owned()),
                ..ledger::Entry::default()
            };
            ledger::record(conn, order.order_id, &order.customer, entry).await?;
            Ok((order.order_id, messages::failure_notice(&order)))
        }
        Event::OrderCancelled(order) => {
            let entry = ledger::Entry {
                currency: Some(order.currency.to_string()),
                total_amount: Some(order.total_amount.as_decimal().clone()),
                cancelled_at: at,
                ..ledger::Entry::default()
            };
            ledger::record(conn, order.order_id, &order.customer, entry).await?;
            Ok((order.order_id, messages::cancellation_notice(&order)))
        }
        Event::PaymentRefunded(refund) => {
            // A refund follows a confirmed order, whose event may simply not have arrived yet:
            // transient, so the consumer's retries give it time.
            let customer = ledger::customer(conn, refund.order_id).await?.ok_or_else(|| {
                HandleError::Transient(format!("no customer known yet for order {}", refund.order_id))
            })?;
            Ok((refund.order_id, messages::refund_notice(&refund, &customer)))
        }
        Event::AccountRegistered(account) => Ok((account.token_id, messages::email_verification(&account))),
        Event::PasswordResetRequested(request) => Ok((request.token_id, messages::password_reset(&request))),
        other => Err(HandleError::Permanent(format!(
            "notifier does not handle `{}` (event {})",
            other.event_type(),
            envelope.id
        ))),
    }
}

/// One record per (order or token, kind, channel). The unique key, not the inbox alone,
/// guarantees one message: a replay under a new event id lands here too.
async fn record(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
    rendered: &Rendered,
) -> Result<(), HandleError> {
    for delivery in rendered.deliveries() {
        if !store::insert(conn, order_id, rendered.kind, &delivery).await? {
            tracing::info!(
                %order_id,
                kind = rendered.kind.as_str(),
                channel = delivery.channel.as_str(),
                "notification already recorded; ignoring repeat"
            );
        }
    }
    Ok(())
}
