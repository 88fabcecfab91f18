//! The service chassis: what every service's `main` and start-up share, so a service wires
//! only its own parts. Common settings ([`CommonSettings`]), one command line built with clap
//! derive ([`cli`]), the PostgreSQL pools and migrations, the broker connection, outbox relay,
//! consumers and background workers ([`Runtime`]), the HTTP server with health and metrics
//! ([`Service`]), and graceful shutdown in the right order.

pub mod cli;
pub mod runtime;
pub mod settings;

pub use cli::{NoCommands, ServiceSpec, main, main_with};
pub use runtime::{Runtime, Service, migrate};
pub use settings::{CommonSettings, ISSUING_SERVICE, load_settings};
