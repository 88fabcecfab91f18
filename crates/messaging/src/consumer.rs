//! Idempotent, batched consumers.
//!
//! Deliveries are taken in batches (whatever has arrived, up to `batch_size`). The whole batch
//! runs in ONE transaction: for each event an inbox row, then the handler's effects and outbox
//! rows. Only after commit is the batch acked, with one `multiple` ack. If any event in the batch
//! fails, the transaction is rolled back and each event is retried in its own transaction, so
//! one bad event never holds back the others. Then:
//!
//! * undecodable or unknown events (poison) go straight to `<queue>.dlq`;
//! * permanent handler failures go to `<queue>.dlq`;
//! * transient failures go to the retry queue for their attempt, which dead-letters them back
//!   after its delay (`AMQP_RETRY_DELAYS_MS`, a `platform::retry::RetrySchedule`: n delays, n + 1
//!   attempts, jitter only lengthens); after the last delay, to the DLQ.
//!
//! A crash anywhere before the ack leaves the batch unacked; RabbitMQ redelivers it and the
//! inbox turns every already-committed event into a no-op.

use crate::broker::{Broker, BrokerError, Outgoing, header_string};
use crate::inbox;
use crate::topology::{dead_letter_queue, queue_name, reroute_exchange, retry_queue};
use contracts::{Envelope, Event};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable};
use platform::db::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What a service does with one event, inside the transaction that records it in the inbox.
pub trait EventHandler: Send + Sync + 'static {
    /// The event types this handler handles, each with a case of its own: exactly what the
    /// service's queue is bound to in [`crate::topology::CONSUMERS`]. The table stays static
    /// (it generates `deploy/rabbitmq/definitions.json` and the broker users' permissions);
    /// [`binding_drift`] compares the two, at start-up (an error in the log) and in each
    /// service's tests, so a binding without a case (dead letters on a good day) or a case
    /// without a binding (events never received) fails the build.
    const HANDLES: &'static [&'static str];

    fn handle<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        envelope: &'a Envelope,
        event: Event,
    ) -> BoxFuture<'a, Result<(), HandleError>>;

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

#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// The consuming service; its queue is `<service>.inbox`.
    pub service: &'static str,
    pub prefetch: u16,
    pub batch_size: usize,
    /// Fault injection for tests: while above zero, each batch is committed and then the channel
    /// is closed without acking, exactly what RabbitMQ sees when a consumer dies between commit
    /// and ack.
    pub crash_before_ack: Arc<AtomicUsize>,
}

impl ConsumerOptions {
    pub fn new(service: &'static str) -> Self {
        Self { service, prefetch: 256, batch_size: 128, crash_before_ack: Arc::new(AtomicUsize::new(0)) }
    }
}

const RETRY_COUNT_HEADER: &str = "x-retry-count";

#[derive(Debug, thiserror::Error)]
enum ConsumeError {
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

enum Verdict {
    Handled,
    Duplicate,
    Retry(String),
    DeadLetter(String),
}

/// Consumes `<service>.inbox` until `cancel` fires, reconnecting after broker or database
/// outages. On cancel, the batch in hand is finished and acked before returning.
pub async fn run<H: EventHandler>(
    broker: Broker,
    pool: PgPool,
    handler: Arc<H>,
    options: ConsumerOptions,
    cancel: CancellationToken,
) {
    let queue = queue_name(options.service);
    if let Some(drift) = binding_drift(options.service, H::HANDLES) {
        tracing::error!(%queue, %drift, "the handler and the queue's bindings disagree");
    }
    while let Some(connection) = broker.connection(&cancel).await {
        let outcome = async {
            let channel = connection.create_channel().await?;
            channel.basic_qos(options.prefetch, BasicQosOptions::default()).await?;
            let consumer = channel
                .basic_consume(
                    queue.as_str().into(),
                    "".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            tracing::info!(%queue, "consuming");
            let result =
                consume(&broker, &pool, handler.as_ref(), &options, &queue, &channel, consumer, &cancel)
                    .await;
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

#[allow(clippy::too_many_arguments)]
async fn consume<H: EventHandler>(
    broker: &Broker,
    pool: &PgPool,
    handler: &H,
    options: &ConsumerOptions,
    queue: &str,
    channel: &lapin::Channel,
    mut consumer: lapin::Consumer,
    cancel: &CancellationToken,
) -> Result<(), ConsumeError> {
    loop {
        let first = tokio::select! {
            next = consumer.next() => next,
            _ = cancel.cancelled() => return Ok(()),
        };
        let mut batch = vec![first.ok_or(ConsumeError::Cancelled)??];
        while batch.len() < options.batch_size {
            match consumer.next().now_or_never() {
                Some(Some(delivery)) => batch.push(delivery?),
                Some(None) => return Err(ConsumeError::Cancelled),
                None => break,
            }
        }
        process_batch(broker, pool, handler, options, queue, channel, batch).await?;
    }
}

async fn process_batch<H: EventHandler>(
    broker: &Broker,
    pool: &PgPool,
    handler: &H,
    options: &ConsumerOptions,
    queue: &str,
    channel: &lapin::Channel,
    batch: Vec<Delivery>,
) -> Result<(), ConsumeError> {
    let started = Instant::now();
    let mut verdicts: Vec<Option<Verdict>> = batch.iter().map(|_| None).collect();
    let mut decoded = Vec::with_capacity(batch.len());
    for (index, delivery) in batch.iter().enumerate() {
        match Envelope::from_slice(&delivery.data)
            .and_then(|envelope| envelope.event().map(|event| (envelope, event)))
        {
            Ok((envelope, event)) => decoded.push((index, envelope, event)),
            Err(error) => {
                tracing::warn!(%queue, %error, "poison message: dead-lettered");
                verdicts[index] = Some(Verdict::DeadLetter(error.to_string()));
            }
        }
    }

    if !decoded.is_empty() {
        let mut pooled = pool.get().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let whole = conn
            .transaction(async |conn: &mut AsyncPgConnection| {
                let mut outcomes = Vec::with_capacity(decoded.len());
                for (index, envelope, event) in &decoded {
                    let span = crate::trace::event_span(options.service, &batch[*index], envelope);
                    let handled = apply(handler, conn, envelope, event.clone()).instrument(span).await?;
                    outcomes.push((*index, handled));
                }
                Ok::<_, HandleError>(outcomes)
            })
            .await;
        match whole {
            Ok(outcomes) => {
                for (index, handled) in outcomes {
                    verdicts[index] = Some(if handled { Verdict::Handled } else { Verdict::Duplicate });
                }
            }
            Err(_) => {
                // Isolate the failure: each event in its own transaction.
                for (index, envelope, event) in &decoded {
                    let span = crate::trace::event_span(options.service, &batch[*index], envelope);
                    let single = conn
                        .transaction(async |conn: &mut AsyncPgConnection| {
                            apply(handler, conn, envelope, event.clone()).await
                        })
                        .instrument(span)
                        .await;
                    verdicts[*index] = Some(match single {
                        Ok(true) => Verdict::Handled,
                        Ok(false) => Verdict::Duplicate,
                        Err(HandleError::Permanent(reason)) => {
                            tracing::warn!(%queue, event_id = %envelope.id, event_type = %envelope.event_type, %reason, "event cannot be handled: dead-lettered");
                            Verdict::DeadLetter(reason)
                        }
                        Err(HandleError::Transient(reason)) => {
                            tracing::warn!(%queue, event_id = %envelope.id, event_type = %envelope.event_type, %reason, "event failed; will retry");
                            Verdict::Retry(reason)
                        }
                    });
                }
            }
        }
        handler.after_commit();
    }

    if options.crash_before_ack.load(Ordering::SeqCst) > 0 {
        options.crash_before_ack.fetch_sub(1, Ordering::SeqCst);
        return Err(ConsumeError::SimulatedCrash);
    }

    // One meaning for every retry setting (platform::retry): n delays between attempts, n + 1
    // attempts; the failure after the last delay is final.
    let schedule = platform::retry::RetrySchedule::new(broker.topology().retry_delays.clone());
    let dlq = dead_letter_queue(queue);
    // Through the service's own exchange: its broker user may not publish to the default one.
    let reroute = reroute_exchange(queue);
    let mut reroutes: Vec<(usize, String, FieldTable, Option<u64>)> = Vec::new();
    for (index, verdict) in verdicts.iter().enumerate() {
        let delivery = &batch[index];
        let event_type = event_type_of(delivery);
        let outcome = match verdict {
            Some(Verdict::Handled) | None => "handled",
            Some(Verdict::Duplicate) => "duplicate",
            Some(Verdict::Retry(reason)) => {
                let attempt = retry_count(delivery) + 1;
                match schedule.delay_after(attempt) {
                    Some(delay) => {
                        let mut headers = carried_headers(delivery);
                        headers.insert(RETRY_COUNT_HEADER.into(), AMQPValue::LongLongInt(i64::from(attempt)));
                        headers.insert("x-last-error".into(), header_string(reason));
                        reroutes.push((
                            index,
                            retry_queue(queue, delay),
                            headers,
                            Some(jittered_millis(delay)),
                        ));
                        "retried"
                    }
                    None => {
                        let reason = format!("gave up after {} attempts: {reason}", attempt);
                        reroutes.push((index, dlq.clone(), dead_letter_headers(delivery, &reason), None));
                        "dead_lettered"
                    }
                }
            }
            Some(Verdict::DeadLetter(reason)) => {
                reroutes.push((index, dlq.clone(), dead_letter_headers(delivery, reason), None));
                "dead_lettered"
            }
        };
        metrics::counter!("messages_consumed_total", "queue" => queue.to_owned(), "type" => event_type, "outcome" => outcome).increment(1);
    }
    let messages: Vec<Outgoing<'_>> = reroutes
        .iter()
        .map(|(index, target, headers, expiration_ms)| {
            let delivery = &batch[*index];
            Outgoing {
                exchange: &reroute,
                routing_key: target,
                payload: &delivery.data,
                message_id: delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
                headers: headers.clone(),
                expiration_ms: *expiration_ms,
            }
        })
        .collect();
    broker.publish_confirmed(&messages).await?;
    if let Some(last) = batch.last() {
        channel.basic_ack(last.delivery_tag, BasicAckOptions { multiple: true }).await?;
    }
    metrics::histogram!("message_batch_duration_seconds", "queue" => queue.to_owned())
        .record(started.elapsed().as_secs_f64());
    Ok(())
}

/// How `handles` (a handler's [`EventHandler::HANDLES`]) differs from what `service`'s queue is
/// bound to; `None` when they are the same set.
pub fn binding_drift(service: &str, handles: &[&str]) -> Option<String> {
    let bound = crate::topology::bindings(service);
    let unhandled: Vec<&str> = bound.iter().copied().filter(|key| !handles.contains(key)).collect();
    let unbound: Vec<&str> = handles.iter().copied().filter(|key| !bound.contains(key)).collect();
    if unhandled.is_empty() && unbound.is_empty() {
        return None;
    }
    Some(format!(
        "{service}: bound but not handled (would be dead-lettered): {unhandled:?}; handled but not bound (never received): {unbound:?}"
    ))
}

async fn apply<H: EventHandler>(
    handler: &H,
    conn: &mut AsyncPgConnection,
    envelope: &Envelope,
    event: Event,
) -> Result<bool, HandleError> {
    if !H::HANDLES.contains(&envelope.event_type.as_str()) {
        // Bound by an older deployment, or published by hand: nothing here knows what to do.
        return Err(HandleError::Permanent(format!(
            "`{}` is not one of the types this service handles",
            envelope.event_type
        )));
    }
    if !inbox::record(conn, envelope.id, &envelope.event_type).await? {
        return Ok(false);
    }
    handler.handle(conn, envelope, event).await?;
    Ok(true)
}

fn event_type_of(delivery: &Delivery) -> String {
    serde_json::from_slice::<serde_json::Value>(&delivery.data)
        .ok()
        .and_then(|value| value.get("type").and_then(|t| t.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn carried_headers(delivery: &Delivery) -> FieldTable {
    delivery.properties.headers().clone().unwrap_or_default()
}

fn dead_letter_headers(delivery: &Delivery, reason: &str) -> FieldTable {
    let mut headers = carried_headers(delivery);
    headers.insert("x-dead-letter-reason".into(), header_string(reason));
    headers.insert("x-original-routing-key".into(), header_string(delivery.routing_key.as_str()));
    headers.insert("x-dead-lettered-at".into(), header_string(&chrono::Utc::now().to_rfc3339()));
    headers
}

fn retry_count(delivery: &Delivery) -> u32 {
    let value =
        delivery.properties.headers().as_ref().and_then(|h| h.inner().get(RETRY_COUNT_HEADER).cloned());
    match value {
        Some(AMQPValue::LongLongInt(n)) => u32::try_from(n).unwrap_or(0),
        Some(AMQPValue::LongInt(n)) => u32::try_from(n).unwrap_or(0),
        Some(AMQPValue::LongUInt(n)) => n,
        Some(AMQPValue::ShortInt(n)) => u32::try_from(n).unwrap_or(0),
        _ => 0,
    }
}

/// Up to 20 % longer (never shorter, as every retry schedule: platform::retry), so retries of
/// many messages that failed together do not return together; the retry queue's TTL is the
/// upper bound.
fn jittered_millis(delay: Duration) -> u64 {
    let jittered = platform::retry::jittered(delay, rand::random::<f64>());
    u64::try_from(jittered.as_millis()).unwrap_or(u64::MAX).max(1)
}
