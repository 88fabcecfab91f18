//! Every event on the bus, typed and versioned. Payloads carry what their consumers need, so no
//! consumer calls back to the producer: `order.confirmed` carries the customer, lines and totals
//! the invoice prints.
//!
//! Compatibility rule: within a major version, fields are only added (as optional), never
//! removed or retyped, and readers ignore fields they do not know. A breaking change is a new
//! major version (`v2`) published alongside the old one until every consumer reads it.

use crate::envelope::{DecodeError, schema_uri};
use crate::money::{Amount, Currency};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductUpserted {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub price: Amount,
    pub currency: Currency,
    /// On hand minus reserved when the event was written.
    pub available: i64,
    pub active: bool,
    /// Increases with every change, so the gateway's read model ignores stale updates.
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub name: String,
    pub email: String,
    /// E.164 (`+14155550123`), when the customer gave one; added in v1 as optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderLine {
    pub product_id: Uuid,
    pub product_name: String,
    pub quantity: u32,
    pub unit_price: Amount,
    pub subtotal: Amount,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCreated {
    pub order_id: Uuid,
    pub customer: Customer,
    pub currency: Currency,
    pub lines: Vec<OrderLine>,
    pub total_amount: Amount,
    pub payment_method: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReservedLine {
    pub product_id: Uuid,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockReserved {
    pub order_id: Uuid,
    pub lines: Vec<ReservedLine>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum StockRejectionReason {
    InsufficientStock,
    UnknownProduct,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockRejected {
    pub order_id: Uuid,
    pub reason: StockRejectionReason,
    /// The first product that could not be reserved.
    pub product_id: Option<Uuid>,
}

/// `stock.committed` and `stock.released`: the reservation of an order reached its end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockSettled {
    pub order_id: Uuid,
    pub lines: Vec<ReservedLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentRequested {
    pub order_id: Uuid,
    pub amount: Amount,
    pub currency: Currency,
    pub payment_method: String,
    /// The account that placed the order (absent for a guest order); added in v1 as optional.
    /// Payment keeps it so only that customer (or an admin) sees or acts on the payment, even
    /// when its port is reached around the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentSucceeded {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub amount: Amount,
    pub currency: Currency,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentFailed {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    /// Machine-readable: `card_declined`, `insufficient_funds`, `unsupported_payment_method`,
    /// `payment_timeout` (the customer did not finish in time), ...
    pub code: String,
    pub message: String,
}

/// Why an order failed, as clients and integrators see it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::VariantArray,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum FailureReason {
    OutOfStock,
    UnknownProduct,
    PaymentDeclined,
    InsufficientFunds,
    PaymentFailed,
    /// The payment waited on the customer (3-D Secure and the like) longer than allowed, and the
    /// stock it held was released.
    PaymentTimeout,
    /// An operator failed an order stuck in the saga.
    Expired,
}

impl FailureReason {
    /// The order's reason for a `payment.failed` code.
    pub fn of_payment_code(code: &str) -> Self {
        match code {
            "card_declined" => Self::PaymentDeclined,
            "insufficient_funds" => Self::InsufficientFunds,
            "payment_timeout" => Self::PaymentTimeout,
            _ => Self::PaymentFailed,
        }
    }

    /// The reason in plain words, for the customer's email.
    pub fn explanation(self) -> &'static str {
        match self {
            Self::OutOfStock => "one of the products you ordered is out of stock",
            Self::UnknownProduct => "one of the products you ordered is no longer sold",
            Self::PaymentDeclined => "your payment was declined",
            Self::InsufficientFunds => "your payment was declined for insufficient funds",
            Self::PaymentFailed => "your payment could not be completed",
            Self::PaymentTimeout => "your payment was not completed in time",
            Self::Expired => "it took too long to process",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderConfirmed {
    pub order_id: Uuid,
    pub customer: Customer,
    pub currency: Currency,
    pub lines: Vec<OrderLine>,
    pub total_amount: Amount,
    pub placed_at: DateTime<Utc>,
    pub payment_id: Uuid,
    /// A guest order only (absent for an account's order: the customer logs in): the link that
    /// shows the order, and lets its customer cancel it, without an account. It carries the
    /// order's secret access token, so it goes into the invoice and nowhere public. Added in
    /// v1 as optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_link: Option<String>,
    /// An order paid in another currency than its products' only: the rate its prices were
    /// converted with, locked when it was placed (the invoice prints it). Added in v1 as
    /// optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_rate: Option<crate::exchange::LockedRate>,
}

/// A day's reference rates, loaded by inventory (the daily job or an admin's refresh), so the
/// gateway converts order prices from its own copy without calling inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeRatesUpdated {
    /// The currency the rates are quoted against (`EUR` for the ECB).
    pub base: Currency,
    /// The publication date of the rates.
    pub date: chrono::NaiveDate,
    /// Units of each currency per one unit of `base`.
    pub rates: Vec<crate::exchange::ExchangeRate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderFailed {
    pub order_id: Uuid,
    pub customer: Customer,
    pub reason: FailureReason,
    pub lines: Vec<ReservedLine>,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::VariantArray,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum NotificationKind {
    Invoice,
    FailureNotice,
    CancellationNotice,
    RefundNotice,
    /// Account messages (not about an order): never announced as `notification.sent` /
    /// `notification.failed`, whose `order_id` they could not fill.
    EmailVerification,
    PasswordReset,
}

impl NotificationKind {
    /// Whether the message is about an order (and so announced on the bus once sent).
    pub fn is_about_an_order(self) -> bool {
        !matches!(self, Self::EmailVerification | Self::PasswordReset)
    }
}

/// How a notification reaches its customer.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::VariantArray,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum Channel {
    Email,
    Sms,
}

/// Where an order stands, as clients, integrators and `order.cancelled` see it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::VariantArray,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum OrderStatus {
    Pending,
    Processing,
    Confirmed,
    Failed,
    Cancelled,
    Shipped,
    Delivered,
}

/// Why a webhook endpoint was disabled.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::VariantArray,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum DisabledReason {
    /// The receiver answered 410 Gone.
    Gone,
    /// Every delivery failed for longer than allowed.
    Failing,
}

/// Who cancelled an order.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::VariantArray,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum CancelledBy {
    Customer,
    Admin,
    /// The sweeper, when an order outlived its deadline.
    System,
}

/// An order was cancelled. Inventory releases (or, for a confirmed order, restocks) its lines;
/// payment voids an open payment or refunds a captured one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub order_id: Uuid,
    pub customer: Customer,
    /// The status the order had when it was cancelled (`pending`, `processing`, `confirmed`).
    pub previous_status: OrderStatus,
    pub cancelled_by: CancelledBy,
    pub currency: Currency,
    pub total_amount: Amount,
    pub lines: Vec<ReservedLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentRefunded {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub refund_id: Uuid,
    pub amount: Amount,
    pub currency: Currency,
}

/// An authorised or pending payment was cancelled before any money moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentVoided {
    pub order_id: Uuid,
    pub payment_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookEndpointDisabled {
    pub endpoint_id: Uuid,
    pub url: String,
    pub reason: DisabledReason,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationSent {
    pub notification_id: Uuid,
    pub order_id: Uuid,
    pub kind: NotificationKind,
    pub channel: Channel,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationFailed {
    pub notification_id: Uuid,
    pub order_id: Uuid,
    pub kind: NotificationKind,
    pub channel: Channel,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookDelivered {
    pub delivery_id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub order_id: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookFailed {
    pub delivery_id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub order_id: Option<Uuid>,
    pub error: String,
}

/// A link that carries a single-use account secret (an email verification or password reset
/// token). It is on the bus only because the notifier must email it; `Debug` never shows it, so
/// a logged event cannot leak it. Read it with [`SecretLink::expose`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretLink(String);

impl SecretLink {
    pub fn new(link: String) -> Self {
        Self(link)
    }

    /// The link itself, for the one place that needs it: the email.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretLink(***)")
    }
}

/// A customer registered: the notifier emails `verification_link` once per `token_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountRegistered {
    pub account_id: Uuid,
    /// The verification token's id (not the token): what makes the email happen once.
    pub token_id: Uuid,
    pub email: String,
    pub name: String,
    pub verification_link: SecretLink,
    pub expires_at: DateTime<Utc>,
}

/// Someone asked to reset an account's password: the notifier emails `reset_link` once per
/// `token_id`. Only written for an existing account (the API answers the same either way).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PasswordResetRequested {
    pub account_id: Uuid,
    pub token_id: Uuid,
    pub email: String,
    pub name: String,
    pub reset_link: SecretLink,
    pub expires_at: DateTime<Utc>,
}

/// `as_str` from the enum's `strum` names (its serde names), for logs and metric labels.
macro_rules! named {
    ($($ty:ty),+) => {
        $(impl $ty {
            pub fn as_str(self) -> &'static str {
                self.into()
            }
        })+
    };
}

named!(
    FailureReason,
    NotificationKind,
    Channel,
    OrderStatus,
    DisabledReason,
    CancelledBy,
    StockRejectionReason
);

macro_rules! events {
    ($($variant:ident($payload:ty) = $name:literal v $version:literal, order: $order:expr;)+) => {
        #[derive(Debug, Clone, PartialEq)]
        pub enum Event {
            $($variant($payload),)+
        }

        impl Event {
            /// Every event type, with the schema version this build writes.
            pub const TYPES: &'static [(&'static str, u32)] = &[$(($name, $version),)+];

            pub fn event_type(&self) -> &'static str {
                match self { $(Self::$variant(_) => $name,)+ }
            }

            pub fn version(&self) -> u32 {
                match self { $(Self::$variant(_) => $version,)+ }
            }

            pub fn order_id(&self) -> Option<Uuid> {
                match self { $(Self::$variant(payload) => ($order)(payload),)+ }
            }

            pub fn data(&self) -> serde_json::Value {
                match self { $(Self::$variant(payload) => serde_json::to_value(payload).unwrap_or_default(),)+ }
            }

            pub fn decode(event_type: &str, dataschema: &str, data: &serde_json::Value) -> Result<Self, DecodeError> {
                match event_type {
                    $($name => Ok(Self::$variant(decode_payload($name, $version, dataschema, data)?)),)+
                    other => Err(DecodeError::UnknownType(other.to_owned())),
                }
            }
        }
    };
}

fn decode_payload<T: DeserializeOwned>(
    event_type: &str,
    version: u32,
    dataschema: &str,
    data: &serde_json::Value,
) -> Result<T, DecodeError> {
    if dataschema != schema_uri(event_type, version) {
        return Err(DecodeError::UnsupportedVersion {
            event_type: event_type.to_owned(),
            found: dataschema.to_owned(),
            supported: version,
        });
    }
    T::deserialize(data)
        .map_err(|source| DecodeError::InvalidData { event_type: event_type.to_owned(), source })
}

events! {
    ProductUpserted(ProductUpserted) = "product.upserted" v 1, order: |_: &ProductUpserted| None;
    OrderCreated(OrderCreated) = "order.created" v 1, order: |p: &OrderCreated| Some(p.order_id);
    StockReserved(StockReserved) = "stock.reserved" v 1, order: |p: &StockReserved| Some(p.order_id);
    StockRejected(StockRejected) = "stock.rejected" v 1, order: |p: &StockRejected| Some(p.order_id);
    StockCommitted(StockSettled) = "stock.committed" v 1, order: |p: &StockSettled| Some(p.order_id);
    StockReleased(StockSettled) = "stock.released" v 1, order: |p: &StockSettled| Some(p.order_id);
    PaymentRequested(PaymentRequested) = "payment.requested" v 1, order: |p: &PaymentRequested| Some(p.order_id);
    PaymentSucceeded(PaymentSucceeded) = "payment.succeeded" v 1, order: |p: &PaymentSucceeded| Some(p.order_id);
    PaymentFailed(PaymentFailed) = "payment.failed" v 1, order: |p: &PaymentFailed| Some(p.order_id);
    OrderConfirmed(OrderConfirmed) = "order.confirmed" v 1, order: |p: &OrderConfirmed| Some(p.order_id);
    OrderFailed(OrderFailed) = "order.failed" v 1, order: |p: &OrderFailed| Some(p.order_id);
    OrderCancelled(OrderCancelled) = "order.cancelled" v 1, order: |p: &OrderCancelled| Some(p.order_id);
    PaymentRefunded(PaymentRefunded) = "payment.refunded" v 1, order: |p: &PaymentRefunded| Some(p.order_id);
    PaymentVoided(PaymentVoided) = "payment.voided" v 1, order: |p: &PaymentVoided| Some(p.order_id);
    NotificationSent(NotificationSent) = "notification.sent" v 1, order: |p: &NotificationSent| Some(p.order_id);
    NotificationFailed(NotificationFailed) = "notification.failed" v 1, order: |p: &NotificationFailed| Some(p.order_id);
    WebhookDelivered(WebhookDelivered) = "webhook.delivered" v 1, order: |p: &WebhookDelivered| p.order_id;
    WebhookFailed(WebhookFailed) = "webhook.failed" v 1, order: |p: &WebhookFailed| p.order_id;
    WebhookEndpointDisabled(WebhookEndpointDisabled) = "webhook.endpoint_disabled" v 1, order: |_: &WebhookEndpointDisabled| None;
    ExchangeRatesUpdated(ExchangeRatesUpdated) = "exchange_rates.updated" v 1, order: |_: &ExchangeRatesUpdated| None;
    AccountRegistered(AccountRegistered) = "account.registered" v 1, order: |_: &AccountRegistered| None;
    PasswordResetRequested(PasswordResetRequested) = "account.password_reset_requested" v 1, order: |_: &PasswordResetRequested| None;
}

/// The events integrators may subscribe to as webhooks: order and payment outcomes, a
/// deliberate list rather than whatever is on the bus.
pub const WEBHOOK_EVENT_TYPES: &[&str] =
    &["order.created", "order.confirmed", "order.failed", "payment.succeeded", "payment.failed"];
