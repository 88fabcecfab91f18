//! `notifier`: tells customers how their order went. Records an invoice, a failure, a
//! cancellation or a refund notice per order and channel (email, and SMS when the customer gave
//! a phone number) from `order.*` and `payment.refunded`, sends each with retries, announces
//! the result as `notification.sent` or `notification.failed`, and emails admins a daily sales
//! summary.

pub mod channels;
pub mod domain;
pub mod handlers;
pub mod http;
pub mod mailer;
pub mod messages;
pub mod money;
pub mod retry;
pub mod schema;
pub mod settings;
pub mod sms;
pub mod startup;
pub mod store;
pub mod summary;
pub mod template;
pub mod worker;

pub const SERVICE: &str = "notifier";

/// This service's outbox: every event it enqueues carries the service as its `source`.
pub const OUTBOX: messaging::Outbox = messaging::Outbox::new(SERVICE);

/// What this service does on the bus, declared once: its queue is bound to what its handler
/// handles, and its broker user's rights, `deploy/rabbitmq/definitions.json` and
/// `proto-schemas/asyncapi.yaml` are generated from this (by the system tests, which see
/// every service).
pub const BUS: messaging::Participant = messaging::Participant {
    service: SERVICE,
    publishes: &["notification.sent", "notification.failed"],
    handles: <handlers::OrderOutcomes as messaging::EventHandler>::HANDLES,
    dead_letters_of: &[],
};
