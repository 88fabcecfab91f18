//! Dead-letter queues (`<service>.inbox.dlq`) for operators: list, replay, purge.
//!
//! Each call uses the process's supervised broker connection and opens one short-lived channel.
//!
//! * **Listing peeks without losing anything.** Messages are taken with `basic.get` (manual
//!   ack) one by one, up to `limit`, and then all handed back with a single `basic.nack`
//!   (`multiple`, `requeue`). Nothing is acked, so a crash mid-listing returns the messages too
//!   (the channel closes). Classic queues put them back at their position; quorum queues
//!   requeue at the tail, in order: a listing of the whole queue keeps its order, a partial one
//!   moves the messages looked at behind the rest (order in a DLQ carries no meaning here:
//!   consumers dedupe and the saga ignores stale moves). Each peek counts as a delivery: on
//!   quorum queues it raises `x-delivery-count`; a DLQ must therefore not carry a
//!   `delivery-limit` (ours do not; RabbitMQ 4 defaults it to 20, so a deployment on RabbitMQ 4
//!   should set `delivery-limit: -1` on `*.dlq` by policy).
//! * **Replay** takes messages the same way, republishes each chosen one to its inbox through
//!   the inbox's reroute exchange on a confirm-mode channel, waits for the broker's confirm and
//!   only then acks the DLQ copy: a crash in between leaves a copy in both queues, which the
//!   inbox turns into one effect. It looks at no more messages than the queue held when it
//!   started, so a replayed message that fails again is not picked up twice. Replaying one
//!   message by id scans the queue (up to 10 000) and hands the others back in order first, so
//!   they keep their order. Bookkeeping headers ([`crate::headers`]) are dropped so the replay
//!   gets the full retry schedule again; `x-replay-count` counts replays.
//! * **Purge** is `queue.purge`: ready messages only.

use crate::broker::{Broker, CONTENT_TYPE};
use crate::headers::{self, DROPPED_ON_REPLAY, number, text};
use crate::topology::{dead_letter_queue, queue_name, reroute_exchange};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel};
use serde::Serialize;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error("`{0}` is not a dead-letter queue of this system")]
    UnknownQueue(String),
    #[error("RabbitMQ is not reachable right now")]
    Unavailable,
    #[error("RabbitMQ error: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("RabbitMQ refused (nacked) a replayed message")]
    Nacked,
}

/// One dead-lettered message, as the consumers (or the broker) described it.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// The AMQP message id (the event id), or the envelope's `id` when the message has none.
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    /// `x-dead-letter-reason`, or the broker's `x-death` reason for broker-side rejects.
    pub reason: Option<String>,
    pub original_routing_key: Option<String>,
    pub dead_lettered_at: Option<String>,
    /// How often the broker has delivered it (`x-delivery-count`, quorum queues).
    pub redelivery_count: i64,
    /// Retries the consumer made before giving up (`x-retry-count`).
    pub retry_count: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueListing {
    pub queue: String,
    pub count: u32,
    pub messages: Vec<DeadLetter>,
}

/// The operators' tools over the dead-letter queues of the services named at construction
/// (a participant's [`crate::Participant::dead_letters_of`]); any other queue is refused.
#[derive(Clone)]
pub struct DeadLetters {
    broker: Broker,
    queues: Vec<String>,
}

impl DeadLetters {
    pub fn new(broker: Broker, services: &[&str]) -> Self {
        Self { broker, queues: dead_letter_queues(services) }
    }

    /// Every dead-letter queue these tools cover, in declaration order.
    pub fn queues(&self) -> &[String] {
        &self.queues
    }

    /// The inbox a dead-letter queue belongs to, if `dlq` is one of ours.
    pub fn inbox_of(&self, dlq: &str) -> Result<String, DeadLetterError> {
        inbox_of(&self.queues, dlq)
    }

    async fn channel(&self) -> Result<Channel, DeadLetterError> {
        let never = CancellationToken::new();
        let connection = tokio::time::timeout(Duration::from_secs(5), self.broker.connection(&never))
            .await
            .ok()
            .flatten()
            .ok_or(DeadLetterError::Unavailable)?;
        Ok(connection.create_channel().await?)
    }

    /// The queue's count and its first `limit` messages, left in place.
    pub async fn list(&self, dlq: &str, limit: usize) -> Result<QueueListing, DeadLetterError> {
        self.inbox_of(dlq)?;
        let channel = self.channel().await?;
        let result = peek(&channel, dlq, limit).await;
        let _ = channel.close(200, "listed".into()).await;
        result
    }

    /// Replays the message with `message_id`, or every message (up to `limit`); returns how many.
    pub async fn replay(
        &self,
        dlq: &str,
        message_id: Option<&str>,
        limit: usize,
    ) -> Result<usize, DeadLetterError> {
        let inbox = self.inbox_of(dlq)?;
        let channel = self.channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        let result = replay_on(&channel, dlq, &inbox, message_id, limit).await;
        let _ = channel.close(200, "replayed".into()).await;
        result
    }

    /// Deletes every ready message; returns how many.
    pub async fn purge(&self, dlq: &str) -> Result<u32, DeadLetterError> {
        self.inbox_of(dlq)?;
        let channel = self.channel().await?;
        let purged = channel.queue_purge(dlq.into(), QueuePurgeOptions::default()).await;
        let _ = channel.close(200, "purged".into()).await;
        Ok(purged?)
    }
}

fn dead_letter_queues(services: &[&str]) -> Vec<String> {
    services.iter().map(|service| dead_letter_queue(&queue_name(service))).collect()
}

fn inbox_of(queues: &[String], dlq: &str) -> Result<String, DeadLetterError> {
    queues
        .iter()
        .any(|queue| queue == dlq)
        .then(|| dlq.trim_end_matches(".dlq").to_owned())
        .ok_or_else(|| DeadLetterError::UnknownQueue(dlq.to_owned()))
}

async fn depth(channel: &Channel, queue: &str) -> Result<u32, DeadLetterError> {
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    Ok(channel.queue_declare(queue.into(), passive, FieldTable::default()).await?.message_count())
}

async fn peek(channel: &Channel, dlq: &str, limit: usize) -> Result<QueueListing, DeadLetterError> {
    let count = depth(channel, dlq).await?;
    let mut messages = Vec::new();
    let mut last_tag = None;
    while messages.len() < limit.min(count as usize) {
        let Some(message) = get(channel, dlq).await? else { break };
        last_tag = Some(message.delivery_tag);
        messages.push(describe(&message));
    }
    if let Some(tag) = last_tag {
        channel.basic_nack(tag, BasicNackOptions { multiple: true, requeue: true }).await?;
        settle(channel, dlq, count).await?;
    }
    Ok(QueueListing { queue: dlq.to_owned(), count, messages })
}

/// Waits (briefly) until the broker has put handed-back messages in the queue again, so the
/// next look at it sees them: a requeue is asynchronous, and a listing right after a listing
/// must not show an empty queue.
async fn settle(channel: &Channel, queue: &str, expected: u32) -> Result<(), DeadLetterError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while depth(channel, queue).await? < expected && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Looks at no more than this many messages to find one by id.
const SCAN_LIMIT: usize = 10_000;

async fn replay_on(
    channel: &Channel,
    dlq: &str,
    inbox: &str,
    message_id: Option<&str>,
    limit: usize,
) -> Result<usize, DeadLetterError> {
    let budget = depth(channel, dlq).await? as usize;
    let Some(wanted) = message_id else {
        let mut replayed = 0;
        while replayed < limit.min(budget) {
            let Some(message) = get(channel, dlq).await? else { break };
            republish(channel, inbox, &message).await?;
            replayed += 1;
        }
        return Ok(replayed);
    };
    // The whole queue is taken (up to SCAN_LIMIT) and the others handed back one by one, in
    // order, before the chosen one is republished: quorum queues requeue at the tail, so this
    // keeps the rest in their order (and a replay that fails again lands behind them).
    let mut chosen = None;
    let mut others = Vec::new();
    for _ in 0..budget.min(SCAN_LIMIT) {
        let Some(message) = get(channel, dlq).await? else { break };
        if chosen.is_none() && event_id(&message).as_deref() == Some(wanted) {
            chosen = Some(message);
        } else {
            others.push(message.delivery_tag);
        }
    }
    let handed_back = others.len() as u32;
    for tag in others {
        channel.basic_nack(tag, BasicNackOptions { multiple: false, requeue: true }).await?;
    }
    settle(channel, dlq, handed_back).await?;
    match chosen {
        Some(message) => {
            republish(channel, inbox, &message).await?;
            Ok(1)
        }
        None => Ok(0),
    }
}

async fn get(channel: &Channel, dlq: &str) -> Result<Option<Delivery>, DeadLetterError> {
    let message = channel.basic_get(dlq.into(), BasicGetOptions { no_ack: false }).await?;
    Ok(message.map(|m| m.delivery))
}

/// Publishes to the inbox, waits for the broker's confirm, then acks the DLQ copy.
async fn republish(channel: &Channel, inbox: &str, delivery: &Delivery) -> Result<(), DeadLetterError> {
    let content_type =
        delivery.properties.content_type().clone().unwrap_or_else(|| ShortString::from(CONTENT_TYPE));
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(content_type)
        .with_message_id(ShortString::from(event_id(delivery).unwrap_or_default()))
        .with_headers(replay_headers(&headers::carried(delivery)));
    let confirm = channel
        // Through the inbox's reroute exchange: the operator's broker user may not publish to
        // the default exchange.
        .basic_publish(
            reroute_exchange(inbox).as_str().into(),
            inbox.into(),
            BasicPublishOptions::default(),
            &delivery.data,
            properties,
        )
        .await?
        .await?;
    if confirm.is_nack() {
        return Err(DeadLetterError::Nacked);
    }
    channel.basic_ack(delivery.delivery_tag, BasicAckOptions { multiple: false }).await?;
    Ok(())
}

fn replay_headers(carried: &FieldTable) -> FieldTable {
    let mut headers = FieldTable::default();
    for (key, value) in carried.inner() {
        if !DROPPED_ON_REPLAY.contains(&key.as_str()) {
            headers.insert(key.clone(), value.clone());
        }
    }
    let replays = number(carried, headers::REPLAY_COUNT) + 1;
    headers.insert(headers::REPLAY_COUNT.into(), AMQPValue::LongLongInt(replays));
    headers
}

fn describe(delivery: &Delivery) -> DeadLetter {
    let carried = headers::carried(delivery);
    let death = first_death(&carried);
    DeadLetter {
        event_id: event_id(delivery),
        event_type: envelope_field(delivery, "type"),
        reason: text(&carried, headers::DEAD_LETTER_REASON)
            .or_else(|| death.as_ref().and_then(|d| text(d, "reason")))
            .or_else(|| text(&carried, "x-first-death-reason")),
        original_routing_key: text(&carried, headers::ORIGINAL_ROUTING_KEY)
            .or_else(|| death.as_ref().and_then(first_routing_key))
            .or_else(|| Some(delivery.routing_key.to_string())),
        dead_lettered_at: text(&carried, headers::DEAD_LETTERED_AT),
        redelivery_count: number(&carried, headers::DELIVERY_COUNT),
        retry_count: number(&carried, headers::RETRY_COUNT),
    }
}

fn event_id(delivery: &Delivery) -> Option<String> {
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
    match headers.inner().get(headers::BROKER_DEATH)? {
        AMQPValue::FieldArray(deaths) => match deaths.as_slice().first()? {
            AMQPValue::FieldTable(death) => Some(death.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn first_routing_key(death: &FieldTable) -> Option<String> {
    match death.inner().get("routing-keys")? {
        AMQPValue::FieldArray(keys) => keys.as_slice().first().and_then(headers::value_text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_start_the_retry_schedule_over_and_are_counted() {
        let mut carried = FieldTable::default();
        carried.insert(headers::RETRY_COUNT.into(), AMQPValue::LongLongInt(3));
        carried.insert(headers::DEAD_LETTER_REASON.into(), headers::string("gave up"));
        carried.insert("traceparent".into(), headers::string("00-abc"));
        carried.insert(headers::REPLAY_COUNT.into(), AMQPValue::LongLongInt(1));
        let replayed = replay_headers(&carried);
        let mut kept: Vec<String> = replayed.inner().keys().map(|k| k.to_string()).collect();
        kept.sort();
        assert_eq!(kept, ["traceparent", "x-replay-count"]);
        assert_eq!(number(&replayed, headers::REPLAY_COUNT), 2);
    }

    #[test]
    fn only_the_named_services_dead_letter_queues_are_accepted() {
        let queues = dead_letter_queues(&["inventory", "payment"]);
        assert_eq!(queues, ["inventory.inbox.dlq", "payment.inbox.dlq"]);
        assert_eq!(inbox_of(&queues, "inventory.inbox.dlq").ok().as_deref(), Some("inventory.inbox"));
        assert!(inbox_of(&queues, "inventory.inbox").is_err());
        assert!(inbox_of(&queues, "other.inbox.dlq").is_err());
    }
}
