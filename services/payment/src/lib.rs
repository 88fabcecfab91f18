//! `payment`: charges orders through a payment provider, once per order.

pub mod domain;
pub mod handlers;
pub mod http;
pub mod settings;
pub mod startup;
pub mod store;

pub const SERVICE: &str = "payment";
