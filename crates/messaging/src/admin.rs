//! What tools and tests do on the broker with administrator rights, typed, so they need no
//! AMQP client of their own: look at queue depths, publish events by hand (as a forger or an
//! operator would), take every message out of a queue.

use crate::broker::{BrokerError, CONTENT_TYPE};
use crate::topology::EXCHANGE;
use contracts::Envelope;
use lapin::options::{BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

/// One connection and a confirm-mode channel.
pub struct AdminChannel {
    connection: Connection,
    channel: Channel,
}

impl AdminChannel {
    pub async fn connect(amqp_url: &str) -> Result<Self, BrokerError> {
        let connection = Connection::connect(amqp_url, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        Ok(Self { connection, channel })
    }

    /// Messages ready in `queue` (not counting those delivered and not yet acked).
    pub async fn queue_depth(&self, queue: &str) -> Result<u32, BrokerError> {
        let passive = QueueDeclareOptions { passive: true, ..Default::default() };
        Ok(self.channel.queue_declare(queue.into(), passive, FieldTable::default()).await?.message_count())
    }

    /// Publishes each envelope to the events exchange under its type, all first, then awaits
    /// every confirm.
    pub async fn publish(&self, envelopes: &[Envelope]) -> Result<(), BrokerError> {
        let mut confirms = Vec::with_capacity(envelopes.len());
        for envelope in envelopes {
            let properties = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type(ShortString::from(CONTENT_TYPE))
                .with_message_id(ShortString::from(envelope.id.to_string()));
            let confirm = self
                .channel
                .basic_publish(
                    EXCHANGE.into(),
                    envelope.event_type.as_str().into(),
                    BasicPublishOptions::default(),
                    &envelope.to_bytes(),
                    properties,
                )
                .await?;
            confirms.push(confirm);
        }
        for confirm in confirms {
            if confirm.await?.is_nack() {
                return Err(BrokerError::Nacked);
            }
        }
        Ok(())
    }

    /// Takes every ready message out of `queue` (acked: they are gone); returns their bodies.
    pub async fn take_all(&self, queue: &str) -> Result<Vec<Vec<u8>>, BrokerError> {
        let mut bodies = Vec::new();
        while let Some(message) =
            self.channel.basic_get(queue.into(), BasicGetOptions { no_ack: true }).await?
        {
            bodies.push(message.delivery.data);
        }
        Ok(bodies)
    }

    pub async fn close(self) {
        let _ = self.connection.close(200, "done".into()).await;
    }
}
