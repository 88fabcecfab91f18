//! `notifier`: tells customers how their order went. Records an invoice, a failure, a
//! cancellation or a refund notice per order and channel (email, and SMS when the customer gave
//! a phone number) from `order.*` and `payment.refunded`, sends each with retries, announces
//! the result as `notification.sent` or `notification.failed`, and emails admins a daily sales
//! summary.

pub mod channels;
pub mod domain;
pub mod handlers;
pub mod http;
pub mod mailer;
pub mod messages;
pub mod money;
pub mod retry;
pub mod sender;
pub mod settings;
pub mod sms;
pub mod startup;
pub mod store;
pub mod summary;
pub mod template;

pub const SERVICE: &str = "notifier";
