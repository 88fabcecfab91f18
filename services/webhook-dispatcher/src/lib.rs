//! `webhook-dispatcher`: lets integrators register HTTP endpoints and delivers order and payment
//! events to them, signed per Standard Webhooks, retried on a schedule until they succeed or
//! the schedule runs out.

pub mod domain;
pub mod guard;
pub mod handlers;
pub mod http;
pub mod redact;
pub mod retention;
pub mod secrets;
pub mod sender;
pub mod settings;
pub mod signing;
pub mod startup;
pub mod store;
pub mod worker;

pub const SERVICE: &str = "webhook-dispatcher";
