//! `inventory`: owns products and stock. Reserves all lines of an order or none, commits the
//! reservation when the order is confirmed and releases it when the order fails.

pub mod domain;
pub mod handlers;
pub mod http;
pub mod images;
pub mod products;
pub mod rates;
pub mod schema;
pub mod settings;
pub mod startup;
pub mod store;

pub const SERVICE: &str = "inventory";

/// This service's outbox: every event it enqueues carries the service as its `source`.
pub const OUTBOX: messaging::Outbox = messaging::Outbox::new(SERVICE);

/// What this service does on the bus, declared once: its queue is bound to what its handler
/// handles, and its broker user's rights, `deploy/rabbitmq/definitions.json` and
/// `proto-schemas/asyncapi.yaml` are generated from this (by the system tests, which see
/// every service).
pub const BUS: messaging::Participant = messaging::Participant {
    service: SERVICE,
    publishes: &[
        "product.upserted",
        "stock.reserved",
        "stock.rejected",
        "stock.committed",
        "stock.released",
        "exchange_rates.updated",
    ],
    handles: <handlers::OrderEvents as messaging::EventHandler>::HANDLES,
    dead_letters_of: &[],
};
