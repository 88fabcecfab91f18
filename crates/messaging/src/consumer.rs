//! Idempotent, batched consumers.
//!
//! Deliveries are taken in batches: a batch closes at [`Batching::size`] deliveries or
//! [`Batching::linger`] after its first one, whichever comes first, and the prefetch is twice
//! the batch so the next batch is already on its way while one is applied. Each batch is
//! handled by [`crate::batch`] in three steps: decode, apply (the whole batch in ONE
//! transaction: for each event an inbox row, then the handler's effects and outbox rows; an
//! event that fails is taken out and the rest applied again, still in one transaction, so one
//! bad event never holds back or undoes the others), and reroute (failures to the retry or
//! dead-letter queues). Only then is the batch acked, with one `multiple` ack:
//!
//! * undecodable or unknown events (poison) go straight to `<queue>.dlq`;
//! * permanent handler failures go to `<queue>.dlq`;
//! * transient failures go to the retry queue for their attempt, which dead-letters them back
//!   after its delay (`AMQP_RETRY_DELAYS_MS`, a `platform::retry::RetrySchedule`: n delays, n + 1
//!   attempts, jitter only lengthens); after the last delay, to the DLQ.
//!
//! A crash anywhere before the ack leaves the batch unacked; RabbitMQ redelivers it and the
//! inbox turns every already-committed event into a no-op.

use crate::batch::{self, Batcher};
use crate::broker::{Broker, BrokerError};
use crate::topology::queue_name;
use contracts::{Envelope, Event};
use diesel_async::AsyncPgConnection;
use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use platform::db::PgPool;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What a service does with one event, inside the transaction that records it in the inbox.
/// Implement `handle` as an `async fn`; the consumer awaits it on a multi-threaded runtime,
/// hence the `Send` future.
pub trait EventHandler: Send + Sync + 'static {
    /// The event types this handler handles, each with a case of its own. This is the one
    /// declaration of the service's subscriptions: its queue is bound to exactly these at
    /// start-up (the service's `BUS` participant names this constant), and the definitions
    /// file and AsyncAPI document are generated from them. An event of any other type (a
    /// binding left by an older version, a message published by hand) is dead-lettered.
    const HANDLES: &'static [&'static str];

    fn handle(
        &self,
        conn: &mut AsyncPgConnection,
        envelope: &Envelope,
        event: Event,
    ) -> impl Future<Output = Result<(), HandleError>> + Send;

    /// Called after a batch committed (for instance to wake a delivery worker at once).
    fn after_commit(&self) {}
}

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Worth retrying later: the database hiccupped, a lock timed out.
    #[error("transient: {0}")]
    Transient(String),
    /// Will never succeed: the event contradicts what we know. Goes to the dead-letter queue.
    #[error("permanent: {0}")]
    Permanent(String),
}

impl From<diesel::result::Error> for HandleError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Transient(error.to_string())
    }
}

/// How deliveries are grouped (settings `AMQP_CONSUMER_BATCH`, `AMQP_CONSUMER_LINGER_MS`).
/// One batch costs one PostgreSQL commit and one ack, whatever its size, so under load a
/// bigger batch is cheaper per event; the linger is the most a lone event waits for company.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// The most deliveries in one transaction (at least 1).
    pub size: usize,
    /// How long a batch stays open for more deliveries after its first (zero: only what has
    /// already arrived).
    pub linger: Duration,
}

impl Batching {
    /// The consumer's prefetch: two batches, so RabbitMQ keeps sending while one is applied.
    pub fn prefetch(&self) -> u16 {
        u16::try_from(self.size.saturating_mul(2)).unwrap_or(u16::MAX)
    }
}

impl Default for Batching {
    fn default() -> Self {
        Self { size: 128, linger: Duration::from_millis(5) }
    }
}

#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// The consuming service; its queue is `<service>.inbox`.
    pub service: &'static str,
    /// Fault injection for tests: while above zero, each batch is committed and then the channel
    /// is closed without acking, exactly what RabbitMQ sees when a consumer dies between commit
    /// and ack.
    pub crash_before_ack: Arc<AtomicUsize>,
}

impl ConsumerOptions {
    pub fn new(service: &'static str) -> Self {
        Self { service, crash_before_ack: Arc::new(AtomicUsize::new(0)) }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConsumeError {
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("database unavailable: {0}")]
    Pool(#[from] diesel_async::pooled_connection::deadpool::PoolError),
    #[error("the broker cancelled the consumer")]
    Cancelled,
    #[error("simulated crash between commit and ack")]
    SimulatedCrash,
}

/// Consumes `<service>.inbox` until `cancel` fires, reconnecting after broker or database
/// outages. On cancel, the batch in hand is finished and acked before returning.
pub async fn run<H: EventHandler>(
    broker: Broker,
    pool: PgPool,
    handler: Arc<H>,
    options: ConsumerOptions,
    batching: Batching,
    cancel: CancellationToken,
) {
    let queue = queue_name(options.service);
    let batching = Batching { size: batching.size.max(1), ..batching };
    let batcher =
        Batcher { broker: &broker, pool: &pool, handler: handler.as_ref(), options: &options, queue: &queue };
    while let Some(connection) = broker.connection(&cancel).await {
        let outcome = async {
            let channel = connection.create_channel().await?;
            channel.basic_qos(batching.prefetch(), BasicQosOptions::default()).await?;
            let consumer = channel
                .basic_consume(
                    queue.as_str().into(),
                    "".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            tracing::info!(%queue, "consuming");
            let result = consume(&batcher, batching, &channel, consumer, &cancel).await;
            let _ = channel.close(200, "consumer stopped".into()).await;
            result
        }
        .await;
        match outcome {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(%queue, %error, "consumer interrupted; resuming");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(300)) => {}
                    _ = cancel.cancelled() => return,
                }
            }
        }
    }
}

/// Hands batches to [`batch::process`] until cancelled: each starts with the next delivery and
/// closes when full or when its linger is over. Once cancelled, the batch in hand is still
/// finished and acked.
async fn consume<H: EventHandler>(
    batcher: &Batcher<'_, H>,
    batching: Batching,
    channel: &lapin::Channel,
    mut consumer: lapin::Consumer,
    cancel: &CancellationToken,
) -> Result<(), ConsumeError> {
    loop {
        let first = tokio::select! {
            next = consumer.next() => next,
            _ = cancel.cancelled() => return Ok(()),
        };
        let mut deliveries = vec![first.ok_or(ConsumeError::Cancelled)??];
        let closes = tokio::time::Instant::now() + batching.linger;
        while deliveries.len() < batching.size {
            // With a zero linger this still takes what is already buffered: a ready stream
            // wins the (biased) select before the elapsed deadline is looked at.
            let next = tokio::select! {
                biased;
                next = consumer.next() => next,
                _ = tokio::time::sleep_until(closes) => break,
                _ = cancel.cancelled() => break,
            };
            match next {
                Some(delivery) => deliveries.push(delivery?),
                None => return Err(ConsumeError::Cancelled),
            }
        }
        batch::process(batcher, channel, deliveries).await?;
    }
}
