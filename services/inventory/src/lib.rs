//! `inventory`: owns products and stock. Reserves all lines of an order or none, commits the
//! reservation when the order is confirmed and releases it when the order fails.

pub mod domain;
pub mod handlers;
pub mod http;
pub mod products;
pub mod settings;
pub mod startup;
pub mod store;

pub const SERVICE: &str = "inventory";
