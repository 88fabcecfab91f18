//! `order-api`: the public gateway and the owner of orders, the saga's process manager.

pub mod accounts;
pub mod cli;
pub mod domain;
pub mod http;
pub mod idempotency;
pub mod orders;
pub mod saga;
pub mod settings;
pub mod startup;
pub mod store;

pub const SERVICE: &str = "order-api";
