//! Dead-letter queues (`<service>.inbox.dlq`) for operators: list, replay, purge.
//!
//! The gateway uses the process's supervised broker connection and opens one short-lived
//! channel per request.
//!
//! * **Listing peeks without losing anything.** Messages are taken with `basic.get` (manual
//!   ack) one by one, up to `limit`, and then all handed back with a single `basic.nack`
//!   (`multiple`, `requeue`). Nothing is acked, so a crash of the gateway mid-listing returns
//!   the messages too (the channel closes). Classic queues put them back at their position;
//!   quorum queues requeue at the tail, in order: a listing of the whole queue keeps its order,
//!   a partial one moves the messages looked at behind the rest (order in a DLQ carries no
//!   meaning here: consumers dedupe and the saga ignores stale moves). Each peek
//!   counts as a delivery: on quorum queues it raises `x-delivery-count`; a DLQ must therefore
//!   not carry a `delivery-limit` (ours do not; RabbitMQ 4 defaults it to 20, so a deployment
//!   on RabbitMQ 4 should set `delivery-limit: -1` on `*.dlq` by policy).
//! * **Replay** takes messages the same way, republishes each chosen one to its inbox through
//!   the default exchange (routing key `<service>.inbox`) on a confirm-mode channel, waits for
//!   the broker's confirm and only then acks the DLQ copy: a crash in between leaves a copy in
//!   both queues, which the inbox turns into one effect. It looks at no more messages than the
//!   queue held when it started, so a replayed message that fails again is not picked up twice.
//!   Replaying one message by id scans the queue (up to 10 000) and hands the others back in
//!   order first, so they keep their order.
//!   Bookkeeping headers (retry count, dead-letter reason, `x-death`) are dropped so the replay
//!   gets the full retry schedule again; `x-replay-count` counts replays.
//! * **Purge** is `queue.purge`: ready messages only.

use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueuePurgeOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel};
use messaging::Broker;
use messaging::topology::{CONSUMERS, dead_letter_queue, queue_name};
use serde::Serialize;

mod headers;
use headers::{describe, event_id, replay_headers};
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

/// Every dead-letter queue of the system, in topology order.
pub fn queues() -> Vec<String> {
    CONSUMERS.iter().map(|(service, _)| dead_letter_queue(&queue_name(service))).collect()
}

/// The inbox a dead-letter queue belongs to, if `dlq` is one of ours.
pub fn inbox_of(dlq: &str) -> Result<String, DeadLetterError> {
    queues()
        .contains(&dlq.to_owned())
        .then(|| dlq.trim_end_matches(".dlq").to_owned())
        .ok_or_else(|| DeadLetterError::UnknownQueue(dlq.to_owned()))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
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

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueListing {
    pub queue: String,
    pub count: u32,
    pub messages: Vec<DeadLetter>,
}

#[derive(Clone)]
pub struct DeadLetters {
    pub broker: Broker,
}

impl DeadLetters {
    async fn channel(&self) -> Result<Channel, DeadLetterError> {
        let never = CancellationToken::new();
        let connection = tokio::time::timeout(Duration::from_secs(5), self.broker.connection(&never))
            .await
            .ok()
            .flatten()
            .ok_or(DeadLetterError::Unavailable)?;
        Ok(connection.create_channel().await?)
    }

    pub async fn list(&self, dlq: &str, limit: usize) -> Result<QueueListing, DeadLetterError> {
        inbox_of(dlq)?;
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
        let inbox = inbox_of(dlq)?;
        let channel = self.channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        let result = replay_on(&channel, dlq, &inbox, message_id, limit).await;
        let _ = channel.close(200, "replayed".into()).await;
        result
    }

    pub async fn purge(&self, dlq: &str) -> Result<u32, DeadLetterError> {
        inbox_of(dlq)?;
        let channel = self.channel().await?;
        let purged = channel.queue_purge(dlq.into(), QueuePurgeOptions::default()).await;
        let _ = channel.close(200, "purged".into()).await;
        Ok(purged?)
    }
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

async fn get(channel: &Channel, dlq: &str) -> Result<Option<lapin::message::Delivery>, DeadLetterError> {
    let message = channel.basic_get(dlq.into(), BasicGetOptions { no_ack: false }).await?;
    Ok(message.map(|m| m.delivery))
}

/// Publishes to the inbox, waits for the broker's confirm, then acks the DLQ copy.
async fn republish(
    channel: &Channel,
    inbox: &str,
    delivery: &lapin::message::Delivery,
) -> Result<(), DeadLetterError> {
    let content_type = delivery
        .properties
        .content_type()
        .clone()
        .unwrap_or_else(|| ShortString::from(messaging::broker::CONTENT_TYPE));
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(content_type)
        .with_message_id(ShortString::from(event_id(delivery).unwrap_or_default()))
        .with_headers(replay_headers(&delivery.properties.headers().clone().unwrap_or_default()));
    let confirm = channel
        // Through the inbox's reroute exchange: the gateway's broker user may not publish to
        // the default exchange.
        .basic_publish(
            messaging::topology::reroute_exchange(inbox).as_str().into(),
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

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn only_the_systems_dead_letter_queues_are_accepted() {
        assert_eq!(inbox_of("inventory.inbox.dlq").ok().as_deref(), Some("inventory.inbox"));
        assert!(inbox_of("inventory.inbox").is_err());
        assert!(inbox_of("other.inbox.dlq").is_err());
        assert_eq!(queues().len(), CONSUMERS.len());
    }
}
