//! RabbitMQ plumbing behind typed APIs, so services never touch lapin:
//!
//! * [`Broker`] keeps one connection alive and reconnects by itself after an outage;
//! * [`topology`] names every exchange, queue and binding of the system in one place;
//! * [`outbox`] writes events in the caller's transaction and [`relay`] publishes them with
//!   publisher confirms, in batches, woken by `LISTEN/NOTIFY`;
//! * [`consumer`] handles deliveries in batches, each batch's inbox rows and effects in one
//!   transaction, acks after commit, and routes failures to retry or dead-letter queues.

pub mod broker;
pub mod consumer;
pub mod inbox;
pub mod outbox;
pub mod relay;
pub mod runtime;
mod schema;
pub mod topology;
mod trace;

pub use broker::{Broker, BrokerConfig, BrokerError, QueueType};
pub use consumer::{ConsumerOptions, EventHandler, HandleError};
pub use runtime::{CommonSettings, Runtime, Service};
pub use topology::Topology;

/// The messaging tables (outbox, inbox) every service carries in its own schema; run before the
/// service's own migrations.
pub const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations");
