//! End-to-end scenarios: the five services run in-process against real PostgreSQL and RabbitMQ
//! (a fresh database and vhost per test), a real SMTP server and a real webhook receiver.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test should stop at the first unexpected value"
)]

mod accounts_verification;
mod api;
mod bad_input;
mod broker_outage;
mod concurrency;
mod currencies;
mod delivery;
mod deploy;
mod docs;
mod invariant_check;
mod isolation;
mod live_updates;
mod notifications;
mod notifier_fixes;
mod operations;
mod ops_setup;
mod orders_list;
mod payments;
mod product_images;
mod products;
mod saga;
mod saga_ends;
mod schema_drift;
mod security_deploy;
mod security_guests;
mod security_internal;
mod security_payments;
mod security_tokens;
mod security_webhooks;
mod support;
mod topology;
mod traces;
mod webhooks;
