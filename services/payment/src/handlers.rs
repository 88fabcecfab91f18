//! `payment.requested` → charge once → `payment.succeeded` / `payment.failed`.

use crate::SERVICE;
use crate::domain::{ChargeOutcome, PROVIDER, simulate_charge};
use crate::store::{self, NewPayment};
use contracts::events::{PaymentFailed, PaymentSucceeded};
use contracts::{Envelope, Event};
use diesel_async::AsyncPgConnection;
use futures_util::future::BoxFuture;
use messaging::{EventHandler, HandleError, outbox};
use uuid::Uuid;

pub struct PaymentRequests;

impl EventHandler for PaymentRequests {
    fn handle<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        envelope: &'a Envelope,
        event: Event,
    ) -> BoxFuture<'a, Result<(), HandleError>> {
        Box::pin(async move {
            let Event::PaymentRequested(request) = event else {
                return Err(HandleError::Permanent(format!(
                    "payment does not handle `{}` ({})",
                    envelope.event_type, envelope.id
                )));
            };
            let payment_id = Uuid::now_v7();
            // The simulated provider decides synchronously and has no side effect outside this
            // transaction, so the charge and its record commit together.
            let outcome = simulate_charge(&request.payment_method);
            let (status, failure) = match &outcome {
                ChargeOutcome::Succeeded => ("succeeded", None),
                ChargeOutcome::Declined { code, message } => ("failed", Some((*code, *message))),
            };
            let inserted = store::insert(
                conn,
                &NewPayment {
                    id: payment_id,
                    order_id: request.order_id,
                    amount: request.amount.as_decimal(),
                    currency: request.currency.as_str(),
                    payment_method: &request.payment_method,
                    provider: PROVIDER,
                    status,
                    failure_code: failure.map(|(code, _)| code),
                    failure_message: failure.map(|(_, message)| message),
                },
            )
            .await?;
            if !inserted {
                tracing::info!(order_id = %request.order_id, "order already has a payment; not charging again");
                return Ok(());
            }
            let reply = match failure {
                None => Event::PaymentSucceeded(PaymentSucceeded {
                    order_id: request.order_id,
                    payment_id,
                    amount: request.amount,
                    currency: request.currency,
                }),
                Some((code, message)) => Event::PaymentFailed(PaymentFailed {
                    order_id: request.order_id,
                    payment_id,
                    code: code.to_owned(),
                    message: message.to_owned(),
                }),
            };
            metrics::counter!("payments_total", "outcome" => status).increment(1);
            outbox::enqueue(conn, SERVICE, &reply).await?;
            Ok(())
        })
    }
}
