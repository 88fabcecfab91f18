//! The operators' dead-letter tools as the gateway serves them (`/api/v1/admin/dead-letters`).
//! How listing, replay and purge work on the broker is `messaging::dead_letters`; this module
//! names the queues they cover (every inbox, `crate::BUS.dead_letters_of`) and shapes the
//! answers for the API and its OpenAPI document.

use messaging::Broker;
use messaging::dead_letters as amqp;
use messaging::topology::{dead_letter_queue, queue_name};
use serde::Serialize;

pub use messaging::dead_letters::DeadLetterError;

/// Every dead-letter queue the tools cover, in declaration order.
pub fn queues() -> Vec<String> {
    crate::BUS.dead_letters_of.iter().map(|service| dead_letter_queue(&queue_name(service))).collect()
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

impl From<amqp::QueueListing> for QueueListing {
    fn from(listing: amqp::QueueListing) -> Self {
        let messages = listing
            .messages
            .into_iter()
            .map(|m| DeadLetter {
                event_id: m.event_id,
                event_type: m.event_type,
                reason: m.reason,
                original_routing_key: m.original_routing_key,
                dead_lettered_at: m.dead_lettered_at,
                redelivery_count: m.redelivery_count,
                retry_count: m.retry_count,
            })
            .collect();
        Self { queue: listing.queue, count: listing.count, messages }
    }
}

#[derive(Clone)]
pub struct DeadLetters {
    tools: amqp::DeadLetters,
}

impl DeadLetters {
    /// The tools on the process's supervised broker connection.
    pub fn new(broker: Broker) -> Self {
        Self { tools: amqp::DeadLetters::new(broker, crate::BUS.dead_letters_of) }
    }

    pub async fn list(&self, dlq: &str, limit: usize) -> Result<QueueListing, DeadLetterError> {
        Ok(self.tools.list(dlq, limit).await?.into())
    }

    /// Replays the message with `message_id`, or every message (up to `limit`); returns how many.
    pub async fn replay(
        &self,
        dlq: &str,
        message_id: Option<&str>,
        limit: usize,
    ) -> Result<usize, DeadLetterError> {
        self.tools.replay(dlq, message_id, limit).await
    }

    pub async fn purge(&self, dlq: &str) -> Result<u32, DeadLetterError> {
        self.tools.purge(dlq).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tools_cover_every_inbox_the_gateway_declares() {
        assert_eq!(queues().len(), crate::BUS.dead_letters_of.len());
        assert!(queues().contains(&"inventory.inbox.dlq".to_owned()));
    }
}
