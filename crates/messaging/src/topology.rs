//! Every exchange, queue and binding of the system, named so the RabbitMQ management UI reads
//! as a map: one topic exchange `orders.events`; per consuming service a queue
//! `<service>.inbox`, its retry queues `<service>.inbox.retry.<delay>` and its dead-letter queue
//! `<service>.inbox.dlq`.
//!
//! Every service declares the whole map at start-up (idempotently), not only its own queue:
//! an event published before its consumer ever ran still has a queue to wait in.

use crate::broker::QueueType;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, ExchangeKind};
use std::time::Duration;

pub const EXCHANGE: &str = "orders.events";

/// Who consumes what. Adding a binding is safe during a rolling deploy; removing one is not
/// done by declaration (unbind it by hand once no version needs it).
pub const CONSUMERS: &[(&str, &[&str])] = &[
    (
        "order-api",
        &[
            "product.upserted",
            "stock.reserved",
            "stock.rejected",
            "payment.succeeded",
            "payment.failed",
            "notification.sent",
            "notification.failed",
            "webhook.delivered",
            "webhook.failed",
            "webhook.endpoint_disabled",
            "payment.refunded",
            "payment.voided",
        ],
    ),
    ("inventory", &["order.created", "order.confirmed", "order.failed", "order.cancelled"]),
    ("payment", &["payment.requested", "order.cancelled"]),
    ("notifier", &["order.confirmed", "order.failed", "order.cancelled", "payment.refunded"]),
    ("webhook-dispatcher", contracts::events::WEBHOOK_EVENT_TYPES),
];

#[derive(Debug, Clone)]
pub struct Topology {
    pub queue_type: QueueType,
    /// One retry queue per delay; a message that failed `n` times waits `retry_delays[n-1]`.
    pub retry_delays: Vec<Duration>,
}

pub fn queue_name(service: &str) -> String {
    format!("{service}.inbox")
}

pub fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}.dlq")
}

/// Retry queues are named by their delay, so changing the schedule creates new queues instead
/// of clashing with the arguments of existing ones.
pub fn retry_queue(queue: &str, delay: Duration) -> String {
    let ms = delay.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{queue}.retry.{}s", ms / 1000)
    } else {
        format!("{queue}.retry.{ms}ms")
    }
}

/// The queue TTL is a little above the delay so that per-message jitter (±20 %) decides.
fn retry_queue_ttl(delay: Duration) -> u32 {
    u32::try_from(delay.as_millis() * 6 / 5 + 1).unwrap_or(u32::MAX)
}

impl Topology {
    pub async fn declare(&self, channel: &Channel) -> Result<(), lapin::Error> {
        channel
            .exchange_declare(
                EXCHANGE.into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions { durable: true, ..Default::default() },
                FieldTable::default(),
            )
            .await?;
        for (service, routing_keys) in CONSUMERS {
            let queue = queue_name(service);
            let durable = QueueDeclareOptions { durable: true, ..Default::default() };
            channel
                .queue_declare(dead_letter_queue(&queue).as_str().into(), durable, self.queue_args(None))
                .await?;
            // Messages the broker itself rejects (or that expire) also end in the DLQ.
            let main_args = self.queue_args(Some(("", &dead_letter_queue(&queue))));
            channel.queue_declare(queue.as_str().into(), durable, main_args).await?;
            for delay in &self.retry_delays {
                let mut args = FieldTable::default();
                args.insert("x-queue-type".into(), long("classic"));
                args.insert("x-message-ttl".into(), AMQPValue::LongUInt(retry_queue_ttl(*delay)));
                args.insert("x-dead-letter-exchange".into(), long(""));
                args.insert("x-dead-letter-routing-key".into(), long(&queue));
                channel.queue_declare(retry_queue(&queue, *delay).as_str().into(), durable, args).await?;
            }
            for key in *routing_keys {
                channel
                    .queue_bind(
                        queue.as_str().into(),
                        EXCHANGE.into(),
                        ShortString::from(*key),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    fn queue_args(&self, dead_letter: Option<(&str, &str)>) -> FieldTable {
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), long(self.queue_type.as_str()));
        if let Some((exchange, routing_key)) = dead_letter {
            args.insert("x-dead-letter-exchange".into(), long(exchange));
            args.insert("x-dead-letter-routing-key".into(), long(routing_key));
        }
        args
    }

    /// The same map in RabbitMQ's definitions format (`deploy/rabbitmq/definitions.json`), for
    /// operators who load topology before any service starts.
    pub fn definitions(&self, vhost: &str) -> serde_json::Value {
        use serde_json::json;
        let mut queues = Vec::new();
        let mut bindings = Vec::new();
        for (service, routing_keys) in CONSUMERS {
            let queue = queue_name(service);
            let dlq = dead_letter_queue(&queue);
            queues.push(json!({"name": dlq, "vhost": vhost, "durable": true, "auto_delete": false,
                "arguments": {"x-queue-type": self.queue_type.as_str()}}));
            queues.push(json!({"name": queue, "vhost": vhost, "durable": true, "auto_delete": false,
                "arguments": {"x-queue-type": self.queue_type.as_str(), "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": dlq}}));
            for delay in &self.retry_delays {
                queues.push(json!({"name": retry_queue(&queue, *delay), "vhost": vhost, "durable": true,
                    "auto_delete": false, "arguments": {"x-queue-type": "classic",
                    "x-message-ttl": retry_queue_ttl(*delay), "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": queue}}));
            }
            for key in *routing_keys {
                bindings.push(json!({"source": EXCHANGE, "vhost": vhost, "destination": queue,
                    "destination_type": "queue", "routing_key": key, "arguments": {}}));
            }
        }
        json!({
            "vhosts": [{"name": vhost}],
            "exchanges": [{"name": EXCHANGE, "vhost": vhost, "type": "topic", "durable": true,
                "auto_delete": false, "internal": false, "arguments": {}}],
            "queues": queues,
            "bindings": bindings,
        })
    }
}

fn long(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_as_a_map_of_the_system() {
        let queue = queue_name("inventory");
        assert_eq!(queue, "inventory.inbox");
        assert_eq!(dead_letter_queue(&queue), "inventory.inbox.dlq");
        assert_eq!(retry_queue(&queue, Duration::from_secs(5)), "inventory.inbox.retry.5s");
        assert_eq!(retry_queue(&queue, Duration::from_millis(250)), "inventory.inbox.retry.250ms");
    }

    #[test]
    fn every_event_type_has_at_least_one_consumer_except_terminal_stock_events() {
        let consumed: Vec<&str> = CONSUMERS.iter().flat_map(|(_, keys)| keys.iter().copied()).collect();
        for (event_type, _) in contracts::Event::TYPES {
            let informational = matches!(*event_type, "stock.committed" | "stock.released");
            assert!(informational || consumed.contains(event_type), "{event_type} has no consumer");
        }
    }

    /// `deploy/rabbitmq/definitions.json` is generated from this module; regenerate it with
    /// `UPDATE_DEFINITIONS=1 cargo test -p messaging`.
    #[test]
    fn deployed_definitions_match_the_code() {
        let topology =
            Topology { queue_type: QueueType::Quorum, retry_delays: crate::broker::default_retry_delays() };
        let generated = topology.definitions("/");
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/rabbitmq/definitions.json");
        let pretty = serde_json::to_string_pretty(&generated).unwrap_or_default() + "\n";
        if std::env::var_os("UPDATE_DEFINITIONS").is_some() {
            std::fs::write(path, &pretty).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert_eq!(
            committed, pretty,
            "deploy/rabbitmq/definitions.json drifted; rerun with UPDATE_DEFINITIONS=1"
        );
    }
}
