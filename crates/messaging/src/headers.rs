//! The AMQP headers the consumers write on retried and dead-lettered messages, and what the
//! dead-letter tools read back and drop on replay: one set of names for both sides.

use lapin::message::Delivery;
use lapin::types::{AMQPValue, FieldTable, LongString};

/// Failed attempts so far; the retry queue for the next attempt is chosen from it.
pub const RETRY_COUNT: &str = "x-retry-count";
/// The error of the last failed attempt (transient failures).
pub const LAST_ERROR: &str = "x-last-error";
/// Why the consumer dead-lettered the message.
pub const DEAD_LETTER_REASON: &str = "x-dead-letter-reason";
/// The event type it was published with (the DLQ is reached through another routing key).
pub const ORIGINAL_ROUTING_KEY: &str = "x-original-routing-key";
pub const DEAD_LETTERED_AT: &str = "x-dead-lettered-at";
/// How often an operator replayed it.
pub const REPLAY_COUNT: &str = "x-replay-count";
/// The broker's own dead-lettering record (messages it rejected or expired itself).
pub const BROKER_DEATH: &str = "x-death";
/// Deliveries so far (quorum queues).
pub const DELIVERY_COUNT: &str = "x-delivery-count";

/// Bookkeeping of one trip through the retry and dead-letter queues: dropped on replay, so a
/// replayed message gets the whole retry schedule again.
pub(crate) const DROPPED_ON_REPLAY: &[&str] = &[
    RETRY_COUNT,
    LAST_ERROR,
    DEAD_LETTER_REASON,
    ORIGINAL_ROUTING_KEY,
    DEAD_LETTERED_AT,
    BROKER_DEATH,
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
    DELIVERY_COUNT,
];

pub(crate) fn string(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

pub(crate) fn carried(delivery: &Delivery) -> FieldTable {
    delivery.properties.headers().clone().unwrap_or_default()
}

/// `carried` plus why and when it was dead-lettered, and the routing key it came with.
pub(crate) fn dead_lettered(delivery: &Delivery, reason: &str) -> FieldTable {
    let mut headers = carried(delivery);
    headers.insert(DEAD_LETTER_REASON.into(), string(reason));
    headers.insert(ORIGINAL_ROUTING_KEY.into(), string(delivery.routing_key.as_str()));
    headers.insert(DEAD_LETTERED_AT.into(), string(&chrono::Utc::now().to_rfc3339()));
    headers
}

/// `carried` with the attempt number and its error, for the retry queue.
pub(crate) fn retried(delivery: &Delivery, attempt: u32, reason: &str) -> FieldTable {
    let mut headers = carried(delivery);
    headers.insert(RETRY_COUNT.into(), AMQPValue::LongLongInt(i64::from(attempt)));
    headers.insert(LAST_ERROR.into(), string(reason));
    headers
}

pub(crate) fn text(table: &FieldTable, key: &str) -> Option<String> {
    table.inner().get(key).and_then(value_text)
}

pub(crate) fn value_text(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    }
}

/// A numeric header in whichever integer type the writer chose; 0 when absent or not a number.
pub(crate) fn number(table: &FieldTable, key: &str) -> i64 {
    match table.inner().get(key) {
        Some(AMQPValue::LongLongInt(n)) => *n,
        Some(AMQPValue::LongInt(n)) => i64::from(*n),
        Some(AMQPValue::LongUInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortInt(n)) => i64::from(*n),
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).parse().unwrap_or(0),
        _ => 0,
    }
}

pub(crate) fn retry_count(delivery: &Delivery) -> u32 {
    u32::try_from(number(&carried(delivery), RETRY_COUNT)).unwrap_or(0)
}
