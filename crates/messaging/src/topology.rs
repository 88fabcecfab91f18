//! Every exchange, queue and binding of the system, named so the RabbitMQ management UI reads
//! as a map: one topic exchange `orders.events`; per consuming service a queue
//! `<service>.inbox`, its retry queues `<service>.inbox.retry.<delay>`, its dead-letter queue
//! `<service>.inbox.dlq`, and a direct exchange `<service>.inbox.reroute` through which its
//! consumer sends failed messages to those queues (and the retry queues send them back).
//!
//! Each service declares only its own part (and the shared exchange) at start-up, because each
//! has its own broker user that may touch nothing else ([`Permissions`]): a compromised
//! service cannot publish another service's events nor read another service's queue. Retries
//! go through the service's own reroute exchange rather than the default exchange, since
//! publishing to the default exchange would let a service drop a message into any queue by
//! name. The whole map is loaded before the first start (`deploy/rabbitmq/definitions.json`,
//! which `make run`, compose and the test harness import), so an event published before its
//! consumer ever ran still has a queue to wait in.

use crate::broker::QueueType;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, ExchangeKind};
use std::time::Duration;

pub const EXCHANGE: &str = "orders.events";

/// Who consumes what. Each list must be exactly its service's handler's
/// [`crate::EventHandler::HANDLES`] ([`crate::consumer::binding_drift`], checked at start-up and
/// by a test per service). Adding a binding is safe during a rolling deploy (its case first);
/// removing one is not done by declaration (unbind it by hand once no version needs it).
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
    // `order.failed` too: an order that ends without success voids or refunds its payment.
    ("payment", &["payment.requested", "order.cancelled", "order.failed"]),
    ("notifier", &["order.confirmed", "order.failed", "order.cancelled", "payment.refunded"]),
    ("webhook-dispatcher", contracts::events::WEBHOOK_EVENT_TYPES),
];

/// The event types `service`'s queue is bound to (empty for a service that only publishes).
pub fn bindings(service: &str) -> &'static [&'static str] {
    CONSUMERS.iter().find(|(name, _)| *name == service).map_or(&[], |(_, keys)| keys)
}

/// Who publishes what: each event type has exactly one publishing service, and that service's
/// broker user may publish only these routing keys (topic permissions on [`EXCHANGE`]).
pub const PUBLISHERS: &[(&str, &[&str])] = &[
    (
        "order-api",
        &["order.created", "order.confirmed", "order.failed", "order.cancelled", "payment.requested"],
    ),
    (
        "inventory",
        &["product.upserted", "stock.reserved", "stock.rejected", "stock.committed", "stock.released"],
    ),
    ("payment", &["payment.succeeded", "payment.failed", "payment.refunded", "payment.voided"]),
    ("notifier", &["notification.sent", "notification.failed"]),
    ("webhook-dispatcher", &["webhook.delivered", "webhook.failed", "webhook.endpoint_disabled"]),
];

/// The service that runs the operators' dead-letter tools (list, replay, purge every
/// `<service>.inbox.dlq`); its broker user gets those queues and reroute exchanges too.
pub const DEAD_LETTER_OPERATOR: &str = "order-api";

#[derive(Debug, Clone)]
pub struct Topology {
    pub queue_type: QueueType,
    /// One retry queue per delay; a message that failed `n` times waits `retry_delays[n-1]`.
    pub retry_delays: Vec<Duration>,
    /// The service whose part [`Topology::declare`] declares; `None` declares the whole map
    /// (what an operator or the test harness loads before any service starts).
    pub service: Option<String>,
}

pub fn queue_name(service: &str) -> String {
    format!("{service}.inbox")
}

/// The direct exchange a consumer reroutes failed messages through: bound to the inbox, its
/// retry queues and its DLQ, each by its own name.
pub fn reroute_exchange(queue: &str) -> String {
    format!("{queue}.reroute")
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

/// The queue TTL is a little above the delay so that per-message jitter (up to +20 %,
/// `platform::retry::JITTER`) decides.
fn retry_queue_ttl(delay: Duration) -> u32 {
    u32::try_from(delay.as_millis() * 6 / 5 + 1).unwrap_or(u32::MAX)
}

impl Topology {
    /// The consumers this topology declares: all, or the one service's (none for a service
    /// that only publishes).
    fn consumers(&self) -> impl Iterator<Item = &'static (&'static str, &'static [&'static str])> + '_ {
        CONSUMERS.iter().filter(|(service, _)| self.service.as_deref().is_none_or(|only| only == *service))
    }

    /// Connects to `amqp_url` with administrator rights and declares the whole map, as loading
    /// `deploy/rabbitmq/definitions.json` does (for test harnesses and tools).
    pub async fn declare_everything(&self, amqp_url: &str) -> Result<(), lapin::Error> {
        let connection = lapin::Connection::connect(amqp_url, lapin::ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        let whole = Self { service: None, ..self.clone() };
        let declared = whole.declare(&channel).await;
        let _ = connection.close(200, "topology declared".into()).await;
        declared
    }

    pub async fn declare(&self, channel: &Channel) -> Result<(), lapin::Error> {
        let durable_exchange = ExchangeDeclareOptions { durable: true, ..Default::default() };
        channel
            .exchange_declare(EXCHANGE.into(), ExchangeKind::Topic, durable_exchange, FieldTable::default())
            .await?;
        for (service, routing_keys) in self.consumers() {
            let queue = queue_name(service);
            let reroute = reroute_exchange(&queue);
            let dlq = dead_letter_queue(&queue);
            channel
                .exchange_declare(
                    reroute.as_str().into(),
                    ExchangeKind::Direct,
                    durable_exchange,
                    FieldTable::default(),
                )
                .await?;
            let durable = QueueDeclareOptions { durable: true, ..Default::default() };
            channel.queue_declare(dlq.as_str().into(), durable, self.queue_args(None)).await?;
            // Messages the broker itself rejects (or that expire) also end in the DLQ.
            let main_args = self.queue_args(Some((&reroute, &dlq)));
            channel.queue_declare(queue.as_str().into(), durable, main_args).await?;
            let mut rerouted = vec![dlq.clone(), queue.clone()];
            for delay in &self.retry_delays {
                let retry = retry_queue(&queue, *delay);
                let mut args = FieldTable::default();
                args.insert("x-queue-type".into(), long("classic"));
                args.insert("x-message-ttl".into(), AMQPValue::LongUInt(retry_queue_ttl(*delay)));
                args.insert("x-dead-letter-exchange".into(), long(&reroute));
                args.insert("x-dead-letter-routing-key".into(), long(&queue));
                channel.queue_declare(retry.as_str().into(), durable, args).await?;
                rerouted.push(retry);
            }
            for target in &rerouted {
                bind(channel, target, &reroute, target).await?;
            }
            for key in *routing_keys {
                bind(channel, &queue, EXCHANGE, key).await?;
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
    /// operators who load topology before any service starts, with each service user's
    /// permissions (users themselves, with their passwords, are created by the set-up script).
    pub fn definitions(&self, vhost: &str) -> serde_json::Value {
        use serde_json::json;
        let mut exchanges = vec![json!({"name": EXCHANGE, "vhost": vhost, "type": "topic", "durable": true,
            "auto_delete": false, "internal": false, "arguments": {}})];
        let mut queues = Vec::new();
        let mut bindings = Vec::new();
        let binding = |source: &str, destination: &str, key: &str| {
            json!({"source": source, "vhost": vhost, "destination": destination,
                "destination_type": "queue", "routing_key": key, "arguments": {}})
        };
        for (service, routing_keys) in self.consumers() {
            let queue = queue_name(service);
            let dlq = dead_letter_queue(&queue);
            let reroute = reroute_exchange(&queue);
            exchanges.push(json!({"name": reroute, "vhost": vhost, "type": "direct", "durable": true,
                "auto_delete": false, "internal": false, "arguments": {}}));
            queues.push(json!({"name": dlq, "vhost": vhost, "durable": true, "auto_delete": false,
                "arguments": {"x-queue-type": self.queue_type.as_str()}}));
            queues.push(json!({"name": queue, "vhost": vhost, "durable": true, "auto_delete": false,
                "arguments": {"x-queue-type": self.queue_type.as_str(), "x-dead-letter-exchange": reroute,
                    "x-dead-letter-routing-key": dlq}}));
            bindings.push(binding(&reroute, &dlq, &dlq));
            bindings.push(binding(&reroute, &queue, &queue));
            for delay in &self.retry_delays {
                let retry = retry_queue(&queue, *delay);
                queues.push(json!({"name": retry, "vhost": vhost, "durable": true,
                    "auto_delete": false, "arguments": {"x-queue-type": "classic",
                    "x-message-ttl": retry_queue_ttl(*delay), "x-dead-letter-exchange": reroute,
                    "x-dead-letter-routing-key": queue}}));
                bindings.push(binding(&reroute, &retry, &retry));
            }
            for key in *routing_keys {
                bindings.push(binding(EXCHANGE, &queue, key));
            }
        }
        let services = PUBLISHERS.iter().map(|(service, _)| *service);
        let permissions: Vec<_> = services
            .clone()
            .map(|service| {
                let p = Permissions::of(service);
                json!({"user": service, "vhost": vhost, "configure": p.configure, "write": p.write, "read": p.read})
            })
            .collect();
        let topic_permissions: Vec<_> = services
            .map(|service| {
                let p = Permissions::of(service);
                json!({"user": service, "vhost": vhost, "exchange": EXCHANGE, "write": p.topic_write,
                    "read": p.topic_read})
            })
            .collect();
        json!({
            "vhosts": [{"name": vhost}],
            "exchanges": exchanges,
            "queues": queues,
            "bindings": bindings,
            "permissions": permissions,
            "topic_permissions": topic_permissions,
        })
    }
}

async fn bind(channel: &Channel, queue: &str, exchange: &str, key: &str) -> Result<(), lapin::Error> {
    channel
        .queue_bind(
            queue.into(),
            exchange.into(),
            ShortString::from(key),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
}

/// A service's broker user's rights, as RabbitMQ regular expressions (`rabbitmqctl
/// set_permissions` / `set_topic_permissions`): configure and read its own queues and
/// exchanges, publish only its own event types, bind its inbox only to the types it consumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub configure: String,
    pub write: String,
    pub read: String,
    /// Routing keys it may publish to [`EXCHANGE`].
    pub topic_write: String,
    /// Routing keys it may bind its queue to on [`EXCHANGE`].
    pub topic_read: String,
}

impl Permissions {
    pub fn of(service: &str) -> Self {
        let own = format!("{}(\\..+)?", regex_escape(&queue_name(service)));
        let exchange = regex_escape(EXCHANGE);
        let (mut write, mut read) =
            (vec![exchange.clone(), own.clone()], vec![exchange.clone(), own.clone()]);
        if service == DEAD_LETTER_OPERATOR {
            // Listing, replaying and purging every service's DLQ (order-api's admin routes).
            for (consumer, _) in CONSUMERS {
                let queue = queue_name(consumer);
                read.push(regex_escape(&dead_letter_queue(&queue)));
                write.push(regex_escape(&reroute_exchange(&queue)));
            }
        }
        let keys = |table: &[(&str, &[&str])]| {
            let keys: Vec<String> = table
                .iter()
                .filter(|(name, _)| *name == service)
                .flat_map(|(_, keys)| keys.iter().map(|key| regex_escape(key)))
                .collect();
            // `^$` matches no routing key: a service with nothing to publish or bind.
            if keys.is_empty() { "^$".to_owned() } else { format!("^({})$", keys.join("|")) }
        };
        Self {
            configure: format!("^({exchange}|{own})$"),
            write: format!("^({})$", write.join("|")),
            read: format!("^({})$", read.join("|")),
            topic_write: keys(PUBLISHERS),
            topic_read: keys(CONSUMERS),
        }
    }
}

fn regex_escape(name: &str) -> String {
    name.replace('.', "\\.")
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

    #[test]
    fn drift_between_a_handler_and_its_bindings_is_named_both_ways() {
        let bound = bindings("payment");
        assert_eq!(crate::consumer::binding_drift("payment", bound), None);
        let drift = crate::consumer::binding_drift("payment", &["payment.requested", "stock.reserved"])
            .unwrap_or_default();
        assert!(
            drift.contains(
                r#"bound but not handled (would be dead-lettered): ["order.cancelled", "order.failed"]"#
            ),
            "{drift}"
        );
        assert!(drift.contains(r#"handled but not bound (never received): ["stock.reserved"]"#), "{drift}");
        assert!(bindings("nobody").is_empty());
    }

    #[test]
    fn every_event_type_has_exactly_one_publisher() {
        let published: Vec<&str> = PUBLISHERS.iter().flat_map(|(_, keys)| keys.iter().copied()).collect();
        for (event_type, _) in contracts::Event::TYPES {
            let publishers = published.iter().filter(|key| *key == event_type).count();
            assert_eq!(publishers, 1, "{event_type} must have exactly one publisher in PUBLISHERS");
        }
        assert_eq!(published.len(), contracts::Event::TYPES.len(), "PUBLISHERS names an unknown type");
    }

    #[test]
    fn a_service_user_may_publish_its_own_events_and_read_its_own_queues_only() {
        let p = Permissions::of("webhook-dispatcher");
        assert_eq!(p.topic_write, r"^(webhook\.delivered|webhook\.failed|webhook\.endpoint_disabled)$");
        assert_eq!(p.read, r"^(orders\.events|webhook-dispatcher\.inbox(\..+)?)$");
        assert_eq!(p.configure, p.read);
        assert!(Permissions::of("order-api").read.contains(r"payment\.inbox\.dlq"), "the DLQ operator");
        assert!(!Permissions::of("order-api").read.contains(r"payment\.inbox("), "but not the inbox itself");
    }

    /// `deploy/rabbitmq/definitions.json` is generated from this module; regenerate it with
    /// `UPDATE_DEFINITIONS=1 cargo test -p messaging`.
    #[test]
    fn deployed_definitions_match_the_code() {
        let topology = Topology {
            queue_type: QueueType::Quorum,
            retry_delays: crate::broker::default_retry_delays(),
            service: None,
        };
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
