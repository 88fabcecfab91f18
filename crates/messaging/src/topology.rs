//! Every exchange, queue and binding of the system, named so the RabbitMQ management UI reads
//! as a map: one topic exchange `orders.events`; per consuming service a queue
//! `<service>.inbox`, its retry queues `<service>.inbox.retry.<delay>`, its dead-letter queue
//! `<service>.inbox.dlq`, and a direct exchange `<service>.inbox.reroute` through which its
//! consumer sends failed messages to those queues (and the retry queues send them back).
//!
//! This crate knows no service: each service declares itself as a [`Participant`] (what it
//! publishes, what its handler handles), and a [`Topology`] is the map of the participants it
//! is given. At start-up a service declares only its own part (and the shared exchange),
//! because each has its own broker user that may touch nothing else
//! ([`crate::definitions::Permissions`]). Retries go through the service's own reroute
//! exchange rather than the default exchange, since publishing to the default exchange would
//! let a service drop a message into any queue by name. The whole map is loaded before the
//! first start (`deploy/rabbitmq/definitions.json`, generated from every service's
//! declaration by the system tests, which `make run`, compose and the test harness import), so
//! an event published before its consumer ever ran still has a queue to wait in.

use crate::broker::QueueType;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, ExchangeKind};
use std::time::Duration;

pub const EXCHANGE: &str = "orders.events";

/// What one service does on the bus, declared by the service itself (its `BUS` constant).
/// Queue bindings, the broker user's rights, `deploy/rabbitmq/definitions.json` and the
/// AsyncAPI document are all derived from these declarations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Participant {
    pub service: &'static str,
    /// The event types it publishes; its broker user may publish these and nothing else.
    pub publishes: &'static [&'static str],
    /// Its handler's [`crate::EventHandler::HANDLES`]: its inbox is bound to exactly these
    /// (empty: a service that only publishes, and has no inbox).
    pub handles: &'static [&'static str],
    /// The services whose dead-letter queues it lists, replays and purges (the operators'
    /// tools, [`crate::dead_letters`]); its broker user gets those queues and exchanges too.
    pub dead_letters_of: &'static [&'static str],
}

impl Participant {
    pub fn consumes(&self) -> bool {
        !self.handles.is_empty()
    }

    pub fn queue(&self) -> String {
        queue_name(self.service)
    }
}

#[derive(Debug, Clone)]
pub struct Topology {
    pub queue_type: QueueType,
    /// One retry queue per delay; a message that failed `n` times waits `retry_delays[n-1]`.
    pub retry_delays: Vec<Duration>,
    /// Whose queues [`Topology::declare`] declares: a service's own at start-up; every
    /// service's in tools and tests (what loading the definitions file does).
    pub participants: Vec<Participant>,
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
pub(crate) fn retry_queue_ttl(delay: Duration) -> u32 {
    u32::try_from(delay.as_millis() * 6 / 5 + 1).unwrap_or(u32::MAX)
}

/// How `handles` (a handler's [`crate::EventHandler::HANDLES`]) differs from `bound` (what its
/// queue is bound to); `None` when they are the same set.
pub fn binding_drift(service: &str, bound: &[&str], handles: &[&str]) -> Option<String> {
    let unhandled: Vec<&str> = bound.iter().copied().filter(|key| !handles.contains(key)).collect();
    let unbound: Vec<&str> = handles.iter().copied().filter(|key| !bound.contains(key)).collect();
    if unhandled.is_empty() && unbound.is_empty() {
        return None;
    }
    Some(format!(
        "{service}: bound but not handled (would be dead-lettered): {unhandled:?}; handled but not bound (never received): {unbound:?}"
    ))
}

impl Topology {
    /// The participants that have an inbox.
    pub fn consumers(&self) -> impl Iterator<Item = &Participant> + '_ {
        self.participants.iter().filter(|p| p.consumes())
    }

    /// Connects to `amqp_url` with administrator rights and declares every participant's part,
    /// as loading `deploy/rabbitmq/definitions.json` does (for test harnesses and tools).
    pub async fn declare_everything(&self, amqp_url: &str) -> Result<(), lapin::Error> {
        let connection = lapin::Connection::connect(amqp_url, lapin::ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        let declared = self.declare(&channel).await;
        let _ = connection.close(200, "topology declared".into()).await;
        declared
    }

    pub async fn declare(&self, channel: &Channel) -> Result<(), lapin::Error> {
        let durable_exchange = ExchangeDeclareOptions { durable: true, ..Default::default() };
        channel
            .exchange_declare(EXCHANGE.into(), ExchangeKind::Topic, durable_exchange, FieldTable::default())
            .await?;
        for participant in self.consumers() {
            let queue = participant.queue();
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
            // Derived from the handler's declaration: what it handles is what it is bound to.
            for key in participant.handles {
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
    fn drift_between_a_handler_and_its_bindings_is_named_both_ways() {
        let bound = ["payment.requested", "order.cancelled", "order.failed"];
        assert_eq!(binding_drift("payment", &bound, &bound), None);
        let drift =
            binding_drift("payment", &bound, &["payment.requested", "stock.reserved"]).unwrap_or_default();
        assert!(
            drift.contains(
                r#"bound but not handled (would be dead-lettered): ["order.cancelled", "order.failed"]"#
            ),
            "{drift}"
        );
        assert!(drift.contains(r#"handled but not bound (never received): ["stock.reserved"]"#), "{drift}");
    }

    #[test]
    fn only_participants_with_a_handler_have_an_inbox() {
        let publisher = Participant { service: "p", publishes: &["a.b"], handles: &[], dead_letters_of: &[] };
        let consumer = Participant { service: "c", publishes: &[], handles: &["a.b"], dead_letters_of: &[] };
        let topology = Topology {
            queue_type: QueueType::Quorum,
            retry_delays: vec![],
            participants: vec![publisher, consumer],
        };
        let names: Vec<String> = topology.consumers().map(Participant::queue).collect();
        assert_eq!(names, ["c.inbox"]);
    }
}
