//! `notifier`: tells customers how their order ended. Records an invoice or a failure notice
//! per order from `order.confirmed` / `order.failed`, sends it by email with retries, and
//! announces the result as `notification.sent` or `notification.failed`.

pub mod domain;
pub mod handlers;
pub mod http;
pub mod mailer;
pub mod sender;
pub mod settings;
pub mod startup;
pub mod store;

pub const SERVICE: &str = "notifier";
