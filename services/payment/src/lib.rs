//! `payment`: charges orders through a payment provider, once per order, and voids or refunds
//! them when the order is cancelled.

pub mod callbacks;
pub mod domain;
pub mod handlers;
pub mod http;
pub mod lifecycle;
pub mod provider;
pub mod schema;
pub mod settings;
pub mod startup;
pub mod store;
pub mod sweeper;
pub mod worker;

pub const SERVICE: &str = "payment";

/// This service's outbox: every event it enqueues carries the service as its `source`.
pub const OUTBOX: messaging::Outbox = messaging::Outbox::new(SERVICE);

/// What this service does on the bus, declared once: its queue is bound to what its handler
/// handles, and its broker user's rights, `deploy/rabbitmq/definitions.json` and
/// `proto-schemas/asyncapi.yaml` are generated from this (by the system tests, which see
/// every service).
pub const BUS: messaging::Participant = messaging::Participant {
    service: SERVICE,
    publishes: &["payment.succeeded", "payment.failed", "payment.refunded", "payment.voided"],
    handles: <handlers::PaymentRequests as messaging::EventHandler>::HANDLES,
    dead_letters_of: &[],
};
