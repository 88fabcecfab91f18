//! Every change to a payment goes through here, inside the caller's transaction: the
//! transition table decides, the move and its cause are logged, and the event other services
//! must see is written to the outbox in the same transaction.

use crate::OUTBOX;
use crate::domain::{Job, PaymentStatus, Trigger, job_of};
use crate::provider::{Intent, IntentStatus, RefundReceipt};
use crate::store::{self, Change, NewPayment, Payment, log};
use contracts::events::{PaymentFailed, PaymentRefunded, PaymentRequested, PaymentSucceeded, PaymentVoided};
use contracts::{Amount, Currency, Event};
use contracts::{OrderId, PaymentId};
use diesel::QueryResult;
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

/// The timing rules, from settings.
#[derive(Debug, Clone)]
pub struct Policy {
    /// How long a payment may wait on the provider.
    pub grace_ms: i64,
    /// How long a payment may wait on the customer (its order's stock held meanwhile).
    pub action_ms: i64,
    pub recheck_ms: i64,
}

/// Records the payment as pending, once per order; false when the order already had one. A
/// cancellation that arrived first is remembered, so the worker voids instead of charging.
pub async fn request(
    conn: &mut AsyncPgConnection,
    request: &PaymentRequested,
    provider: &str,
    cause: &str,
) -> QueryResult<bool> {
    let id = PaymentId::new();
    let new = NewPayment {
        id,
        order_id: OrderId(request.order_id),
        amount: request.amount.as_decimal(),
        currency: request.currency.as_str(),
        payment_method: &request.payment_method,
        provider,
        status: PaymentStatus::Pending,
        traceparent: platform::trace::current_traceparent(),
        customer_id: request.customer_id,
    };
    if !store::insert(conn, &new).await? {
        return Ok(false);
    }
    log::transition(conn, id, None, PaymentStatus::Pending, cause).await?;
    if log::is_cancelled(conn, OrderId(request.order_id)).await? {
        store::change(conn, id, Change::CancelRequested).await?;
    }
    Ok(true)
}

/// Remembers that the order ended without success (`order.cancelled` or `order.failed`) and,
/// when the order has a payment, asks the worker to void or refund it. A payment requested
/// later is voided before it is charged; one the provider captures later is refunded
/// ([`apply_intent`]: `cancel_requested` turns a success into a refund job).
pub async fn cancel_order(
    conn: &mut AsyncPgConnection,
    order_id: OrderId,
    event_id: Uuid,
) -> QueryResult<()> {
    log::record_cancellation(conn, order_id, event_id).await?;
    if let Some(payment) = store::lock_by_order(conn, order_id).await? {
        let status = payment.status;
        let undoable =
            status.is_open() || matches!(status, PaymentStatus::Succeeded | PaymentStatus::PartiallyRefunded);
        if undoable && !payment.cancel_requested {
            store::change(conn, payment.id, Change::CancelRequested).await?;
        }
    }
    Ok(())
}

/// Applies `trigger`; `None` (logged and counted) when the table refuses the move.
pub async fn move_to(
    conn: &mut AsyncPgConnection,
    payment: &Payment,
    trigger: Trigger,
    cause: &str,
) -> QueryResult<Option<PaymentStatus>> {
    let from = payment.status;
    let to = match from.next(trigger) {
        Ok(to) => to,
        Err(illegal) => {
            tracing::info!(payment_id = %payment.id, %illegal, cause, "ignoring a move the payment's state does not allow");
            metrics::counter!("payment_events_ignored_total", "from" => from.as_str(), "trigger" => format!("{trigger:?}")).increment(1);
            return Ok(None);
        }
    };
    store::set_status(conn, payment.id, to).await?;
    log::transition(conn, payment.id, Some(from), to, cause).await?;
    metrics::counter!("payment_transitions_total", "from" => from.as_str(), "to" => to.as_str()).increment(1);
    Ok(Some(to))
}

/// What the provider says about the payment (an answer, a re-check or a callback), applied to
/// the locked row. Returns whether it moved the payment.
pub async fn apply_intent(
    conn: &mut AsyncPgConnection,
    payment: &Payment,
    intent: &Intent,
    cause: &str,
    policy: &Policy,
) -> QueryResult<bool> {
    if payment.provider_ref.is_none() {
        store::change(conn, payment.id, Change::ProviderRef(&intent.id)).await?;
    }
    let status = payment.status;
    let moved = match &intent.status {
        IntentStatus::Succeeded => {
            let moved = move_to(conn, payment, Trigger::ProviderSucceeded, cause).await?;
            if moved.is_some() {
                if matches!(status, PaymentStatus::Failed | PaymentStatus::Voided) {
                    tracing::warn!(payment_id = %payment.id, "the provider captured a payment we had given up on; refunding it");
                    store::change(conn, payment.id, Change::CancelRequested).await?;
                }
                OUTBOX.enqueue(conn, &succeeded_event(payment)).await?;
            }
            moved
        }
        IntentStatus::Failed { code, decline_code, message } => {
            fail(conn, payment, Trigger::ProviderFailed, (code, decline_code.as_deref(), message), cause)
                .await?
        }
        IntentStatus::RequiresAction | IntentStatus::Processing => {
            let (trigger, same, millis) = match intent.status {
                IntentStatus::RequiresAction => {
                    (Trigger::ProviderRequiresAction, PaymentStatus::RequiresAction, policy.action_ms)
                }
                _ => (Trigger::ProviderProcessing, PaymentStatus::Processing, policy.grace_ms),
            };
            store::change(conn, payment.id, Change::ExpiresIn { millis }).await?;
            if status == same { None } else { move_to(conn, payment, trigger, cause).await? }
        }
        IntentStatus::RequiresConfirmation => None,
        IntentStatus::Canceled if payment.cancel_requested => void(conn, payment, cause).await?,
        IntentStatus::Canceled => {
            let reason = ("payment_canceled", None, "The provider cancelled the payment");
            fail(conn, payment, Trigger::ProviderFailed, reason, cause).await?
        }
    };
    reschedule(conn, payment.id, policy).await?;
    Ok(moved.is_some())
}

pub async fn fail(
    conn: &mut AsyncPgConnection,
    payment: &Payment,
    trigger: Trigger,
    (code, decline_code, message): (&str, Option<&str>, &str),
    cause: &str,
) -> QueryResult<Option<PaymentStatus>> {
    let moved = move_to(conn, payment, trigger, cause).await?;
    if moved.is_some() {
        store::change(conn, payment.id, Change::Failure { code, decline_code, message }).await?;
        let failed = PaymentFailed {
            order_id: payment.order_id.into(),
            payment_id: payment.id.into(),
            code: code.to_owned(),
            message: message.to_owned(),
        };
        OUTBOX.enqueue(conn, &Event::PaymentFailed(failed)).await?;
    }
    Ok(moved)
}

pub async fn void(
    conn: &mut AsyncPgConnection,
    payment: &Payment,
    cause: &str,
) -> QueryResult<Option<PaymentStatus>> {
    let moved = move_to(conn, payment, Trigger::Void, cause).await?;
    if moved.is_some() {
        let voided = PaymentVoided { order_id: payment.order_id.into(), payment_id: payment.id.into() };
        OUTBOX.enqueue(conn, &Event::PaymentVoided(voided)).await?;
    }
    Ok(moved)
}

/// The whole remaining amount was refunded at the provider.
pub async fn refunded(
    conn: &mut AsyncPgConnection,
    payment: &Payment,
    receipt: &RefundReceipt,
    cause: &str,
) -> QueryResult<Option<PaymentStatus>> {
    let remaining = &payment.amount - &payment.refunded_amount;
    let moved = move_to(conn, payment, Trigger::RefundedInFull, cause).await?;
    if moved.is_some() {
        let refund_id = Uuid::now_v7();
        log::insert_refund(conn, refund_id, payment.id, &remaining, &receipt.id, "order_cancelled").await?;
        store::change(conn, payment.id, Change::Refunded(&payment.amount)).await?;
        let event = PaymentRefunded {
            order_id: payment.order_id.into(),
            payment_id: payment.id.into(),
            refund_id,
            amount: Amount::from_db(remaining),
            currency: Currency::from_db(payment.currency.clone()),
        };
        OUTBOX.enqueue(conn, &Event::PaymentRefunded(event)).await?;
    }
    Ok(moved)
}

/// The grace period ran out: an open payment fails with `payment_timeout`. Once, whichever
/// replica gets here first (the row lock and the table decide).
pub async fn expire(
    conn: &mut AsyncPgConnection,
    payment_id: PaymentId,
    policy: &Policy,
) -> QueryResult<bool> {
    let Some(payment) = store::lock(conn, payment_id).await? else { return Ok(false) };
    if !payment.status.is_open() {
        return Ok(false);
    }
    let reason = ("payment_timeout", None, "The payment was not completed in time");
    let moved = fail(conn, &payment, Trigger::Expire, reason, "sweeper:grace_period").await?;
    reschedule(conn, payment_id, policy).await?;
    Ok(moved.is_some())
}

/// Sets when the worker looks at the payment next, from what it now needs.
pub async fn reschedule(
    conn: &mut AsyncPgConnection,
    payment_id: PaymentId,
    policy: &Policy,
) -> QueryResult<()> {
    let Some(payment) = store::find(conn, payment_id).await? else { return Ok(()) };
    let change = match job_of(payment.standing()) {
        Job::Charge | Job::Void | Job::Refund => Change::Schedule { millis: 0, retries: 0, error: None },
        Job::Recheck => Change::Schedule { millis: policy.recheck_ms, retries: 0, error: None },
        Job::Nothing => Change::Idle,
    };
    store::change(conn, payment_id, change).await
}

fn succeeded_event(payment: &Payment) -> Event {
    Event::PaymentSucceeded(PaymentSucceeded {
        order_id: payment.order_id.into(),
        payment_id: payment.id.into(),
        amount: Amount::from_db(payment.amount.clone()),
        currency: Currency::from_db(payment.currency.clone()),
    })
}
