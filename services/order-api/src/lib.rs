//! `order-api`: the public gateway and the owner of orders, the saga's process manager.

pub mod accounts;
pub mod cli;
pub mod dead_letters;
pub mod domain;
pub mod http;
pub mod idempotency;
pub mod live;
pub mod maintenance;
pub mod order_metrics;
pub mod orders;
pub mod rates;
pub mod saga;
pub mod schema;
pub mod settings;
pub mod startup;
pub mod store;
pub mod stuck_orders;

pub const SERVICE: &str = "order-api";

/// This service's outbox: every event it enqueues carries the service as its `source`.
pub const OUTBOX: messaging::Outbox = messaging::Outbox::new(SERVICE);

/// What this service does on the bus, declared once: its queue is bound to what its handler
/// handles, and its broker user's rights, `deploy/rabbitmq/definitions.json` and
/// `proto-schemas/asyncapi.yaml` are generated from this (by the system tests, which see
/// every service).
pub const BUS: messaging::Participant = messaging::Participant {
    service: SERVICE,
    publishes: &[
        "order.created",
        "order.confirmed",
        "order.failed",
        "order.cancelled",
        "payment.requested",
        "account.registered",
        "account.password_reset_requested",
    ],
    handles: <saga::OrderSaga as messaging::EventHandler>::HANDLES,
    // The operators' dead-letter tools (`/api/v1/admin/dead-letters`) cover every inbox.
    dead_letters_of: &["order-api", "inventory", "payment", "notifier", "webhook-dispatcher"],
};
