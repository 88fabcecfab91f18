//! `payment`: charges orders through a payment provider, once per order, and voids or refunds
//! them when the order is cancelled.

pub mod callbacks;
pub mod domain;
pub mod handlers;
pub mod http;
pub mod lifecycle;
pub mod provider;
pub mod settings;
pub mod startup;
pub mod store;
pub mod sweeper;
pub mod worker;

pub const SERVICE: &str = "payment";
