//! RabbitMQ plumbing behind typed APIs, so services never touch lapin:
//!
//! * [`Broker`] keeps one connection alive and reconnects by itself after an outage;
//! * [`topology`] names every exchange, queue and binding; each service declares itself as a
//!   [`Participant`] (what it publishes, what its handler handles) and the bindings,
//!   [`definitions`] and broker-user rights are derived from those declarations;
//! * [`Outbox`] writes a service's events in the caller's transaction and [`relay`] publishes
//!   them with publisher confirms, in batches, woken by `LISTEN/NOTIFY`;
//! * [`consumer`] takes deliveries in batches and [`batch`] handles each (decode, apply in one
//!   transaction with the inbox rows, reroute failures to retry or dead-letter queues), acking
//!   after commit;
//! * [`dead_letters`] lists, replays and purges dead-letter queues for operators;
//! * [`admin`] is what tools and tests do with administrator rights (queue depths, raw
//!   publishes).
//!
//! The service chassis (settings, CLI, HTTP server, shutdown) is the `chassis` crate.

pub mod admin;
mod batch;
pub mod broker;
pub mod consumer;
pub mod dead_letters;
pub mod definitions;
pub mod headers;
pub mod inbox;
pub mod outbox;
pub mod relay;
mod schema;
pub mod topology;
mod trace;

pub use broker::{Broker, BrokerConfig, BrokerError, QueueType};
pub use consumer::{ConsumerOptions, EventHandler, HandleError};
pub use dead_letters::DeadLetters;
pub use outbox::Outbox;
pub use topology::{Participant, Topology};

/// The messaging tables (outbox, inbox) every service carries in its own schema; run before the
/// service's own migrations.
pub const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations");
