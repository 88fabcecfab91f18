//! Reading what the consumers and the broker wrote on a dead letter, and what a replay keeps.

use super::DeadLetter;
use lapin::message::Delivery;
use lapin::types::{AMQPValue, FieldTable};

const DROPPED_ON_REPLAY: &[&str] = &[
    "x-retry-count",
    "x-last-error",
    "x-dead-letter-reason",
    "x-original-routing-key",
    "x-dead-lettered-at",
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
    "x-delivery-count",
];

pub(super) fn replay_headers(carried: &FieldTable) -> FieldTable {
    let mut headers = FieldTable::default();
    for (key, value) in carried.inner() {
        if !DROPPED_ON_REPLAY.contains(&key.as_str()) {
            headers.insert(key.clone(), value.clone());
        }
    }
    let replays = number(carried, "x-replay-count") + 1;
    headers.insert("x-replay-count".into(), AMQPValue::LongLongInt(replays));
    headers
}

pub(super) fn describe(delivery: &Delivery) -> DeadLetter {
    let headers = delivery.properties.headers().clone().unwrap_or_default();
    let death = first_death(&headers);
    DeadLetter {
        event_id: event_id(delivery),
        event_type: envelope_field(delivery, "type"),
        reason: text(&headers, "x-dead-letter-reason")
            .or_else(|| death.as_ref().and_then(|d| text(d, "reason")))
            .or_else(|| text(&headers, "x-first-death-reason")),
        original_routing_key: text(&headers, "x-original-routing-key")
            .or_else(|| death.as_ref().and_then(first_routing_key))
            .or_else(|| Some(delivery.routing_key.to_string())),
        dead_lettered_at: text(&headers, "x-dead-lettered-at"),
        redelivery_count: number(&headers, "x-delivery-count"),
        retry_count: number(&headers, "x-retry-count"),
    }
}

pub(super) fn event_id(delivery: &Delivery) -> Option<String> {
    delivery
        .properties
        .message_id()
        .as_ref()
        .map(ToString::to_string)
        .filter(|id| !id.is_empty())
        .or_else(|| envelope_field(delivery, "id"))
}

fn envelope_field(delivery: &Delivery, field: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(&delivery.data).ok()?;
    value.get(field)?.as_str().map(str::to_owned)
}

fn first_death(headers: &FieldTable) -> Option<FieldTable> {
    match headers.inner().get("x-death")? {
        AMQPValue::FieldArray(deaths) => match deaths.as_slice().first()? {
            AMQPValue::FieldTable(death) => Some(death.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn first_routing_key(death: &FieldTable) -> Option<String> {
    match death.inner().get("routing-keys")? {
        AMQPValue::FieldArray(keys) => keys.as_slice().first().and_then(value_text),
        _ => None,
    }
}

fn text(table: &FieldTable, key: &str) -> Option<String> {
    table.inner().get(key).and_then(value_text)
}

fn value_text(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    }
}

fn number(table: &FieldTable, key: &str) -> i64 {
    match table.inner().get(key) {
        Some(AMQPValue::LongLongInt(n)) => *n,
        Some(AMQPValue::LongInt(n)) => i64::from(*n),
        Some(AMQPValue::LongUInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortInt(n)) => i64::from(*n),
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).parse().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::LongString;

    fn long(value: &str) -> AMQPValue {
        AMQPValue::LongString(LongString::from(value))
    }

    #[test]
    fn replays_start_the_retry_schedule_over_and_are_counted() {
        let mut headers = FieldTable::default();
        headers.insert("x-retry-count".into(), AMQPValue::LongLongInt(3));
        headers.insert("x-dead-letter-reason".into(), long("gave up"));
        headers.insert("traceparent".into(), long("00-abc"));
        headers.insert("x-replay-count".into(), AMQPValue::LongLongInt(1));
        let replayed = replay_headers(&headers);
        let mut kept: Vec<String> = replayed.inner().keys().map(|k| k.to_string()).collect();
        kept.sort();
        assert_eq!(kept, ["traceparent", "x-replay-count"]);
        assert_eq!(number(&replayed, "x-replay-count"), 2);
    }
}
