//! The order saga's process manager: each reply moves the order with the transition table and
//! asks for the next step, in the consumer's transaction (inbox row, order update, history and
//! outbox rows commit together).

use crate::OUTBOX;
use crate::domain::status::{OrderStatus, Transitions, Trigger};
use crate::store::{self, DeliveryFlag, MoneyBack, OrderRow};
use contracts::events::{
    FailureReason, NotificationKind, OrderConfirmed, OrderFailed, PaymentRequested, StockRejectionReason,
};
use contracts::{Amount, Currency, Envelope, Event};
use diesel_async::AsyncPgConnection;
use messaging::{EventHandler, HandleError};

pub struct OrderSaga {
    /// For the guest's order link in `order.confirmed` (`PUBLIC_BASE_URL`).
    pub public_base_url: String,
}

impl EventHandler for OrderSaga {
    /// Every type has its own case below; the queue is bound to exactly these (`crate::BUS`)
    /// (`binding_drift`, tested in `saga_ends`).
    const HANDLES: &'static [&'static str] = &[
        "product.upserted",
        "stock.reserved",
        "stock.rejected",
        "payment.succeeded",
        "payment.failed",
        "notification.sent",
        "notification.failed",
        "webhook.delivered",
        "webhook.failed",
        "webhook.endpoint_disabled",
        "payment.refunded",
        "payment.voided",
        "exchange_rates.updated",
    ];

    async fn handle(
        &self,
        conn: &mut AsyncPgConnection,
        envelope: &Envelope,
        event: Event,
    ) -> Result<(), HandleError> {
        let cause = format!("event:{}", envelope.id);
        match event {
            Event::ProductUpserted(product) => store::upsert_catalog(conn, &product).await?,
            Event::ExchangeRatesUpdated(update) => crate::rates::apply_update(conn, &update).await?,
            Event::StockReserved(reserved) => {
                if let Some(order) =
                    advance(conn, reserved.order_id, Trigger::StockReserved, None, &cause).await?
                {
                    let request = PaymentRequested {
                        order_id: order.id,
                        amount: Amount::from_db(order.total_amount.clone()),
                        currency: Currency::from_db(order.currency.clone()),
                        payment_method: order.payment_method.clone(),
                        customer_id: order.customer_id,
                    };
                    OUTBOX.enqueue(conn, &Event::PaymentRequested(request)).await?;
                }
            }
            Event::StockRejected(rejected) => {
                let reason = match rejected.reason {
                    StockRejectionReason::InsufficientStock => FailureReason::OutOfStock,
                    StockRejectionReason::UnknownProduct => FailureReason::UnknownProduct,
                };
                fail(conn, rejected.order_id, Trigger::StockRejected, reason, &cause).await?;
            }
            Event::PaymentSucceeded(paid) => {
                if let Some(order) =
                    advance(conn, paid.order_id, Trigger::PaymentSucceeded, None, &cause).await?
                {
                    let items = store::items_of(conn, order.id).await?;
                    let order_link = self.guest_order_link(conn, &order).await?;
                    let confirmed = OrderConfirmed {
                        order_id: order.id,
                        customer: order.customer(),
                        currency: Currency::from_db(order.currency.clone()),
                        lines: items.iter().map(store::ItemRow::to_line).collect(),
                        total_amount: Amount::from_db(order.total_amount.clone()),
                        placed_at: order.created_at,
                        payment_id: paid.payment_id,
                        order_link,
                        exchange_rate: crate::rates::locked_rate_of(conn, order.id).await?,
                    };
                    OUTBOX.enqueue(conn, &Event::OrderConfirmed(confirmed)).await?;
                }
            }
            Event::PaymentFailed(failed) => {
                // `payment_timeout` (a lapsed customer action) keeps its name up to the API.
                let reason = FailureReason::of_payment_code(&failed.code);
                fail(conn, failed.order_id, Trigger::PaymentFailed, reason, &cause).await?;
            }
            // The invoice flag means the invoice email; an SMS copy does not count.
            Event::NotificationSent(sent)
                if sent.kind == NotificationKind::Invoice
                    && sent.channel == contracts::events::Channel::Email =>
            {
                store::mark_delivered(conn, sent.order_id, DeliveryFlag::Invoice).await?;
            }
            Event::NotificationSent(_) => {}
            Event::NotificationFailed(failed) => {
                tracing::warn!(order_id = %failed.order_id, kind = ?failed.kind, error = %failed.error, "notification could not be delivered");
            }
            Event::WebhookDelivered(delivered) => {
                if let Some(order_id) = delivered.order_id {
                    store::mark_delivered(conn, order_id, DeliveryFlag::Webhook).await?;
                }
            }
            Event::WebhookFailed(failed) => {
                tracing::warn!(order_id = ?failed.order_id, endpoint_id = %failed.endpoint_id, error = %failed.error, "webhook delivery gave up");
            }
            // Kept (not unbound): removing a binding is not done by declaration, so an
            // existing broker would go on routing it here. The gateway is where operators
            // look, so it says so in its log and metrics; the dispatcher owns the endpoint.
            Event::WebhookEndpointDisabled(disabled) => {
                tracing::warn!(endpoint_id = %disabled.endpoint_id, url = %disabled.url, reason = %disabled.reason, "a webhook endpoint was disabled");
                metrics::counter!("webhook_endpoints_disabled_total", "reason" => disabled.reason.as_str())
                    .increment(1);
            }
            // The money went back after the order ended (cancelled, failed, or a payment
            // that completed after its order had failed): the order shows it.
            Event::PaymentRefunded(refunded) => {
                let what = MoneyBack::Refunded {
                    amount: refunded.amount.as_decimal(),
                    currency: refunded.currency.as_str(),
                };
                money_back(conn, refunded.order_id, what, &cause).await?;
            }
            Event::PaymentVoided(voided) => {
                money_back(conn, voided.order_id, MoneyBack::Voided, &cause).await?;
            }
            other => {
                return Err(HandleError::Permanent(format!(
                    "order-api does not handle `{}`",
                    other.event_type()
                )));
            }
        }
        Ok(())
    }
}

impl OrderSaga {
    /// A guest order's link for the invoice, with a token of its own (the one returned at
    /// creation is stored only hashed, so it cannot be sent again). `None` for account orders.
    async fn guest_order_link(
        &self,
        conn: &mut AsyncPgConnection,
        order: &OrderRow,
    ) -> Result<Option<String>, HandleError> {
        if order.customer_id.is_some() {
            return Ok(None);
        }
        let (token, hash) = crate::domain::access_token::generate();
        store::save_access_token(conn, order.id, store::TokenPurpose::Invoice, &hash).await?;
        Ok(Some(format!("{}/api/v1/orders/{}?access_token={token}", self.public_base_url, order.id)))
    }
}

/// Moves the order by `trigger`; `None` when the order is unknown or the move is illegal (a late
/// or repeated event), which is logged and counted, not retried.
async fn advance(
    conn: &mut AsyncPgConnection,
    order_id: uuid::Uuid,
    trigger: Trigger,
    failure: Option<FailureReason>,
    cause: &str,
) -> Result<Option<OrderRow>, HandleError> {
    let Some(order) = store::lock_order(conn, order_id).await? else {
        return Err(HandleError::Permanent(format!("no order {order_id}")));
    };
    let from = order.status;
    let to = match from.next(trigger) {
        Ok(to) => to,
        Err(illegal) => {
            tracing::info!(%order_id, %illegal, "ignoring event that does not apply to the order's state");
            metrics::counter!("order_events_ignored_total", "from" => from.as_str(), "trigger" => format!("{trigger:?}")).increment(1);
            return Ok(None);
        }
    };
    store::set_status(conn, order_id, to, failure, cause).await?;
    metrics::counter!("order_transitions_total", "from" => from.as_str(), "to" => to.as_str()).increment(1);
    Ok(Some(OrderRow { status: to, ..order }))
}

async fn fail(
    conn: &mut AsyncPgConnection,
    order_id: uuid::Uuid,
    trigger: Trigger,
    reason: FailureReason,
    cause: &str,
) -> Result<(), HandleError> {
    if let Some(order) = advance(conn, order_id, trigger, Some(reason), cause).await? {
        debug_assert_eq!(order.status, OrderStatus::Failed);
        let items = store::items_of(conn, order.id).await?;
        let failed = OrderFailed {
            order_id: order.id,
            customer: order.customer(),
            reason,
            lines: items.iter().map(store::ItemRow::to_reserved_line).collect(),
        };
        OUTBOX.enqueue(conn, &Event::OrderFailed(failed)).await?;
    }
    Ok(())
}

/// Records a refund or a void on the order, under its lock (a refund and a cancel may arrive
/// together).
async fn money_back(
    conn: &mut AsyncPgConnection,
    order_id: uuid::Uuid,
    what: MoneyBack<'_>,
    cause: &str,
) -> Result<(), HandleError> {
    if store::lock_order(conn, order_id).await?.is_none() {
        return Err(HandleError::Permanent(format!("no order {order_id}")));
    }
    store::record_money_back(conn, order_id, what, cause).await?;
    let what = match what {
        MoneyBack::Refunded { .. } => "refunded",
        MoneyBack::Voided => "voided",
    };
    metrics::counter!("order_payments_returned_total", "outcome" => what).increment(1);
    Ok(())
}
