//! One supervised RabbitMQ connection per process. lapin does not reconnect by itself, so a
//! supervisor task connects (retrying with `backon`'s exponential backoff, capped, with
//! jitter, for as long as the process runs), declares the topology, publishes the connection
//! to everyone waiting for it, and starts over when it drops.

use crate::topology::Topology;
use backon::{ExponentialBuilder, Retryable};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    /// Replicated, the default where the broker supports it (RabbitMQ ≥ 3.8).
    Quorum,
    Classic,
}

impl QueueType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quorum => "quorum",
            Self::Classic => "classic",
        }
    }
}

pub fn default_retry_delays() -> Vec<Duration> {
    [1, 10, 60, 300].into_iter().map(Duration::from_secs).collect()
}

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `amqp://user:pass@host:port/vhost`; kept out of logs because it may hold a password.
    pub url: platform::settings::Secret,
    /// Shown in the management UI's connection list.
    pub connection_name: String,
    pub topology: Topology,
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("RabbitMQ is not reachable right now")]
    Unavailable,
    #[error("RabbitMQ error: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("RabbitMQ refused (nacked) a published message")]
    Nacked,
}

/// A message to publish: to `exchange` ("" is the default exchange, which routes to the queue
/// named by `routing_key`).
pub struct Outgoing<'a> {
    pub exchange: &'a str,
    pub routing_key: &'a str,
    pub payload: &'a [u8],
    pub message_id: String,
    pub headers: FieldTable,
    /// Per-message TTL in milliseconds (retry jitter).
    pub expiration_ms: Option<u64>,
}

pub const CONTENT_TYPE: &str = "application/cloudevents+json";

#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    config: BrokerConfig,
    connection: watch::Sender<Option<Arc<Connection>>>,
    publisher: Mutex<Option<(Arc<Connection>, Channel)>>,
}

impl Broker {
    /// Starts the supervisor; returns at once. Until the first connection succeeds, publishers
    /// and consumers wait (the outbox keeps accepted work safe meanwhile).
    pub fn start(config: BrokerConfig, cancel: CancellationToken) -> Self {
        let (sender, _) = watch::channel(None);
        let broker =
            Self { inner: Arc::new(Inner { config, connection: sender, publisher: Mutex::new(None) }) };
        tokio::spawn(broker.clone().supervise(cancel));
        broker
    }

    pub fn topology(&self) -> &Topology {
        &self.inner.config.topology
    }

    pub fn is_connected(&self) -> bool {
        self.inner.connection.borrow().as_ref().is_some_and(|c| c.status().connected())
    }

    /// Waits for a live connection; `None` once `cancel` fires.
    pub async fn connection(&self, cancel: &CancellationToken) -> Option<Arc<Connection>> {
        let mut receiver = self.inner.connection.subscribe();
        tokio::select! {
            found = receiver.wait_for(|c| c.as_ref().is_some_and(|c| c.status().connected())) => {
                found.ok().and_then(|c| c.clone())
            }
            _ = cancel.cancelled() => None,
        }
    }

    async fn supervise(self, cancel: CancellationToken) {
        let name = self.inner.config.connection_name.clone();
        loop {
            let connection = tokio::select! {
                connection = self.connect_until_up() => connection,
                _ = cancel.cancelled() => return,
            };
            // The retries never give up, so an error here cannot happen; go round again.
            let Ok(connection) = connection else { continue };
            tracing::info!(connection = %name, "connected to RabbitMQ");
            metrics::gauge!("amqp_connected", "connection" => name.clone()).set(1.0);
            let connection = Arc::new(connection);
            self.inner.connection.send_replace(Some(connection.clone()));
            let closed = watch_until_closed(&connection, &cancel).await;
            self.inner.connection.send_replace(None);
            metrics::gauge!("amqp_connected", "connection" => name.clone()).set(0.0);
            if !closed {
                let _ = connection.close(200, "shutting down".into()).await;
                return;
            }
            tracing::warn!(connection = %name, "lost the RabbitMQ connection; reconnecting");
        }
    }

    /// Connects and declares the topology, retrying until it works: 200 ms, doubling, capped
    /// at 5 s, with jitter so replicas that lost the broker together do not return together.
    /// The caller stops it on cancellation.
    async fn connect_until_up(&self) -> Result<Connection, lapin::Error> {
        let name = self.inner.config.connection_name.as_str();
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .without_max_times();
        let attempt = || async {
            let properties = ConnectionProperties::default().with_connection_name(LongString::from(name));
            let connection = Connection::connect(self.inner.config.url.expose(), properties).await?;
            let channel = connection.create_channel().await?;
            self.inner.config.topology.declare(&channel).await?;
            let _ = channel.close(200, "topology declared".into()).await;
            Ok::<_, lapin::Error>(connection)
        };
        attempt
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .notify(|error: &lapin::Error, retry_in: Duration| {
                tracing::warn!(connection = %name, %error, retry_in_ms = retry_in.as_millis() as u64, "cannot connect to RabbitMQ");
            })
            .await
    }

    /// Publishes every message with publisher confirms: all are sent first, then all confirms
    /// awaited, so a batch costs one round trip, not one per message. Ok means RabbitMQ has
    /// taken responsibility for every message.
    pub async fn publish_confirmed(&self, messages: &[Outgoing<'_>]) -> Result<(), BrokerError> {
        if messages.is_empty() {
            return Ok(());
        }
        let mut guard = self.inner.publisher.lock().await;
        let current = self.inner.connection.borrow().clone().ok_or(BrokerError::Unavailable)?;
        let reusable = guard
            .as_ref()
            .filter(|(conn, channel)| Arc::ptr_eq(conn, &current) && channel.status().connected())
            .map(|(_, channel)| channel.clone());
        let channel = match reusable {
            Some(channel) => channel,
            None => {
                let channel = current.create_channel().await?;
                channel.confirm_select(ConfirmSelectOptions::default()).await?;
                *guard = Some((current.clone(), channel.clone()));
                channel
            }
        };
        let result = publish_on(&channel, messages).await;
        if result.is_err() {
            *guard = None;
        }
        result
    }
}

async fn publish_on(channel: &Channel, messages: &[Outgoing<'_>]) -> Result<(), BrokerError> {
    let mut confirms = Vec::with_capacity(messages.len());
    for message in messages {
        let mut properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(ShortString::from(CONTENT_TYPE))
            .with_message_id(ShortString::from(message.message_id.as_str()))
            .with_headers(message.headers.clone());
        if let Some(ms) = message.expiration_ms {
            properties = properties.with_expiration(ShortString::from(ms.to_string()));
        }
        let confirm = channel
            .basic_publish(
                ShortString::from(message.exchange),
                ShortString::from(message.routing_key),
                BasicPublishOptions::default(),
                message.payload,
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

/// Returns true when the connection closed under us, false when we were cancelled.
async fn watch_until_closed(connection: &Connection, cancel: &CancellationToken) -> bool {
    use futures_util::StreamExt;
    let mut events = std::pin::pin!(connection.events_listener());
    // Events cover most losses; the status check covers a close that raises no event.
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(lapin::Event::Error(error)) => {
                    tracing::warn!(%error, "RabbitMQ connection error");
                    return true;
                }
                None => return true,
                Some(_) => {}
            },
            _ = tick.tick() => if !connection.status().connected() { return true },
            _ = cancel.cancelled() => return false,
        }
    }
}
