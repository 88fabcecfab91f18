//! What must hold once the system has settled after any run — a system test, `make bench`, a
//! chaos run — unless the caller names the exception:
//!
//! - every dead-letter queue (`*.dlq`) is empty, and every other queue has been consumed;
//! - every service's outbox is drained (no event waits to be published);
//! - no order is left `pending` or `processing`;
//! - every order's stock is settled: nothing stays reserved; a confirmed (or shipped, delivered)
//!   order committed exactly what it ordered; a failed or cancelled one committed nothing; and each
//!   product's `reserved` count equals its open reservations;
//! - every order's money balances: captured minus refunded equals the order's total when it is
//!   `confirmed`, `shipped` or `delivered`, and 0 when it is `failed` or `cancelled`; a terminal
//!   order's payment is not left open; the refunds recorded add up to the refunded amount;
//! - exactly one invoice (email) for an order that was ever confirmed, none for one that was not.
//!
//! Outboxes and the saga may still be settling when a run ends, so [`verify`] polls until the
//! invariants hold twice in a row, or a deadline passes, and then reports what broke, per order.
//! Orders are read from the gateway's tables; a payment, reservation or notification of an order
//! the gateway never had (a test that publishes events by hand) is not judged.

mod broker;
mod database;
mod report;

pub use report::{DeadLetter, OrderState, Report};

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long [`verify`] waits for the system to settle by default.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);
/// Between two looks at the system; two passing looks this far apart make it "settled".
const POLL_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invariants: could not read the database: {0}")]
    Database(String),
    #[error("invariants: could not read the broker: {0}")]
    Broker(String),
    /// The system did not settle into a state where every invariant holds.
    #[error("{0}")]
    Broken(Box<Report>),
}

/// Where the system under check keeps its state.
#[derive(Debug, Clone)]
pub struct Target {
    /// A connection that can read every service's schema (the superuser or a read-all role).
    pub database_url: String,
    /// The vhost of the run, as `amqp://user:password@host:port/vhost`.
    pub amqp_url: String,
    /// The RabbitMQ management API (lists the vhost's queues): base URL, user, password.
    pub management_url: String,
    pub management_user: String,
    pub management_password: String,
}

impl Target {
    /// `database_url` and `amqp_url`, with the management API on loopback as `guest`.
    pub fn new(database_url: impl Into<String>, amqp_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            amqp_url: amqp_url.into(),
            management_url: "http://127.0.0.1:15672".into(),
            management_user: "guest".into(),
            management_password: "guest".into(),
        }
    }

    pub fn with_management(mut self, url: impl Into<String>, user: &str, password: &str) -> Self {
        self.management_url = url.into();
        self.management_user = user.into();
        self.management_password = password.into();
        self
    }
}

/// What the caller expects to differ from a good day, each with its reason.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    pub(crate) dead_letters: BTreeMap<String, u32>,
    pub(crate) queued: BTreeMap<String, String>,
    pub(crate) open_orders: BTreeMap<Uuid, String>,
    pub(crate) unbalanced_payments: BTreeMap<Uuid, String>,
}

impl Expectations {
    pub fn new() -> Self {
        Self::default()
    }

    /// `queue` (a `*.dlq`) holds exactly `count` messages at the end.
    pub fn expect_dead_letters(mut self, queue: &str, count: u32) -> Self {
        self.dead_letters.insert(queue.to_owned(), count);
        self
    }

    /// `queue` may still hold messages at the end (its consumer was stopped on purpose).
    pub fn allow_queued_messages(mut self, queue: &str, reason: &str) -> Self {
        self.queued.insert(queue.to_owned(), reason.to_owned());
        self
    }

    /// The order may stay `pending` or `processing`; its stock and money are not judged.
    pub fn allow_open_order(mut self, order: impl OrderId, reason: &str) -> Self {
        self.open_orders.insert(order.order_id(), reason.to_owned());
        self
    }

    /// The order's money need not balance (nor its payment be closed).
    pub fn allow_unbalanced_payment(mut self, order: impl OrderId, reason: &str) -> Self {
        self.unbalanced_payments.insert(order.order_id(), reason.to_owned());
        self
    }

    /// The exceptions, for the report.
    fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (queue, count) in &self.dead_letters {
            lines.push(format!("{queue} holds {count} dead letter(s)"));
        }
        for (queue, reason) in &self.queued {
            lines.push(format!("{queue} may hold messages: {reason}"));
        }
        for (order, reason) in &self.open_orders {
            lines.push(format!("order {order} may stay open: {reason}"));
        }
        for (order, reason) in &self.unbalanced_payments {
            lines.push(format!("order {order} may be unbalanced: {reason}"));
        }
        lines
    }
}

/// An order id as tests hold it: a `Uuid` or its text (a test that holds an unparseable id has
/// a bug, so it maps to the nil id, which matches no order).
pub trait OrderId {
    fn order_id(&self) -> Uuid;
}

impl OrderId for Uuid {
    fn order_id(&self) -> Uuid {
        *self
    }
}

impl OrderId for &str {
    fn order_id(&self) -> Uuid {
        self.parse().unwrap_or_default()
    }
}

impl OrderId for &String {
    fn order_id(&self) -> Uuid {
        self.parse().unwrap_or_default()
    }
}

/// One look at the system: every invariant, judged now.
pub async fn check(target: &Target, expected: &Expectations) -> Result<Report, Error> {
    look(target, expected, true).await
}

/// One look may take this long at most: a server that is restarting can leave a connection
/// hanging rather than refused.
const LOOK_TIMEOUT: Duration = Duration::from_secs(10);

async fn look(target: &Target, expected: &Expectations, with_detail: bool) -> Result<Report, Error> {
    let database = tokio::time::timeout(LOOK_TIMEOUT, database::read(&target.database_url))
        .await
        .map_err(|_| Error::Database(format!("no answer within {LOOK_TIMEOUT:?}")))??;
    let queues = tokio::time::timeout(LOOK_TIMEOUT, broker::read(target, expected, with_detail))
        .await
        .map_err(|_| Error::Broker(format!("no answer within {LOOK_TIMEOUT:?}")))??;
    Ok(report::judge(database, queues, expected))
}

/// Polls until every invariant holds on two looks in a row (so work still in flight between
/// them is seen), or `timeout` passes; returns the passing report or [`Error::Broken`] with
/// the last look, in detail.
pub async fn verify(target: &Target, expected: &Expectations, timeout: Duration) -> Result<Report, Error> {
    let started = Instant::now();
    let mut held_before = false;
    loop {
        // A broker or database that is restarting (a chaos run) is one more thing to wait out.
        let mut report = match look(target, expected, false).await {
            Ok(report) => report,
            Err(error) if started.elapsed() >= timeout => return Err(error),
            Err(_) => {
                held_before = false;
                tokio::time::sleep(POLL_INTERVAL).await;
                continue;
            }
        };
        if report.holds() {
            if held_before {
                report.waited = started.elapsed();
                return Ok(report);
            }
            held_before = true;
        } else {
            held_before = false;
            if started.elapsed() >= timeout {
                // Once more, reading what the dead letters are (which touches them).
                let mut report = look(target, expected, true).await?;
                report.waited = started.elapsed();
                report.expected = expected.describe();
                if report.holds() {
                    return Ok(report);
                }
                return Err(Error::Broken(Box::new(report)));
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
