//! `order-api`: the public gateway and the owner of orders, the saga's process manager.

pub mod accounts;
pub mod cli;
pub mod dead_letters;
pub mod domain;
pub mod http;
pub mod idempotency;
pub mod maintenance;
pub mod order_metrics;
pub mod orders;
pub mod saga;
pub mod settings;
pub mod startup;
pub mod store;
pub mod stuck_orders;

pub const SERVICE: &str = "order-api";
