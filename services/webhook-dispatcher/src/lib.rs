//! `webhook-dispatcher`: lets integrators register HTTP endpoints and delivers order and payment
//! events to them, signed per Standard Webhooks, retried on a schedule until they succeed or
//! the schedule runs out.

pub mod domain;
pub mod guard;
pub mod handlers;
pub mod http;
pub mod redact;
pub mod retention;
pub mod schema;
pub mod secrets;
pub mod sender;
pub mod settings;
pub mod signing;
pub mod startup;
pub mod store;
pub mod worker;

pub const SERVICE: &str = "webhook-dispatcher";

/// This service's outbox: every event it enqueues carries the service as its `source`.
pub const OUTBOX: messaging::Outbox = messaging::Outbox::new(SERVICE);

/// What this service does on the bus, declared once: its queue is bound to what its handler
/// handles, and its broker user's rights, `deploy/rabbitmq/definitions.json` and
/// `proto-schemas/asyncapi.yaml` are generated from this (by the system tests, which see
/// every service).
pub const BUS: messaging::Participant = messaging::Participant {
    service: SERVICE,
    publishes: &["webhook.delivered", "webhook.failed", "webhook.endpoint_disabled"],
    handles: <handlers::WebhookEvents as messaging::EventHandler>::HANDLES,
    dead_letters_of: &[],
};
