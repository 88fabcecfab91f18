//! One batch of deliveries, in three steps that each do one thing:
//!
//! 1. [`decode`]: parse each delivery into an envelope and a typed event; what does not parse
//!    is poison and gets its verdict (dead letter) at once.
//! 2. [`apply`]: the decoded events in ONE transaction (inbox row, handler effects, outbox
//!    rows); an event that fails gets its verdict (retry, dead letter) and the transaction runs
//!    again without it, so the others still commit together (handled, duplicate).
//! 3. [`reroute`]: failed deliveries republished (confirmed) to their retry queue or the DLQ.
//!
//! [`process`] runs the three and acks the whole batch with one `multiple` ack.

use crate::broker::{Broker, Outgoing};
use crate::consumer::{ConsumeError, ConsumerOptions, EventHandler, HandleError};
use crate::topology::{dead_letter_queue, reroute_exchange, retry_queue};
use crate::{headers, inbox};
use contracts::{Envelope, Event};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use lapin::message::Delivery;
use lapin::options::BasicAckOptions;
use lapin::types::FieldTable;
use platform::db::PgPool;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// What one consumer handles its batches with.
pub(crate) struct Batcher<'a, H> {
    pub broker: &'a Broker,
    pub pool: &'a PgPool,
    pub handler: &'a H,
    pub options: &'a ConsumerOptions,
    /// `<service>.inbox`
    pub queue: &'a str,
}

enum Verdict {
    Handled,
    Duplicate,
    Retry(String),
    DeadLetter(String),
}

/// A delivery that parsed: its position in the batch, its envelope and its event.
struct Decoded {
    index: usize,
    envelope: Envelope,
    event: Event,
}

/// Decodes, applies and reroutes `batch`, then acks it with one `multiple` ack.
pub(crate) async fn process<H: EventHandler>(
    batcher: &Batcher<'_, H>,
    channel: &lapin::Channel,
    batch: Vec<Delivery>,
) -> Result<(), ConsumeError> {
    let started = Instant::now();
    let (decoded, mut verdicts) = decode(batcher.queue, &batch);
    if !decoded.is_empty() {
        apply(batcher, &batch, &decoded, &mut verdicts).await?;
        batcher.handler.after_commit();
    }
    let crash = &batcher.options.crash_before_ack;
    if crash.load(Ordering::SeqCst) > 0 {
        crash.fetch_sub(1, Ordering::SeqCst);
        return Err(ConsumeError::SimulatedCrash);
    }
    reroute(batcher, &batch, &verdicts).await?;
    if let Some(last) = batch.last() {
        channel.basic_ack(last.delivery_tag, BasicAckOptions { multiple: true }).await?;
    }
    metrics::histogram!("message_batch_duration_seconds", "queue" => batcher.queue.to_owned())
        .record(started.elapsed().as_secs_f64());
    Ok(())
}

/// Step 1: the deliveries that parse, and a verdict slot per delivery (already filled for
/// poison).
fn decode(queue: &str, batch: &[Delivery]) -> (Vec<Decoded>, Vec<Option<Verdict>>) {
    let mut verdicts: Vec<Option<Verdict>> = batch.iter().map(|_| None).collect();
    let mut decoded = Vec::with_capacity(batch.len());
    for (index, delivery) in batch.iter().enumerate() {
        match Envelope::from_slice(&delivery.data)
            .and_then(|envelope| envelope.event().map(|event| (envelope, event)))
        {
            Ok((envelope, event)) => decoded.push(Decoded { index, envelope, event }),
            Err(error) => {
                tracing::warn!(%queue, %error, "poison message: dead-lettered");
                verdicts[index] = Some(Verdict::DeadLetter(error.to_string()));
            }
        }
    }
    (decoded, verdicts)
}

/// Why one attempt at the batch's transaction failed.
enum Failure {
    /// The event at this position of the attempt failed (its transaction is rolled back).
    Event(usize, HandleError),
    /// BEGIN or COMMIT failed: no event to blame.
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for Failure {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(error)
    }
}

/// Step 2: the whole batch in one transaction. An event that fails gets its verdict and is
/// taken out, and the transaction runs again with the others, so a batch with k bad events
/// costs k + 1 attempts but still one commit, and the good events are applied exactly once.
/// (A SAVEPOINT per event would avoid the re-runs but costs two more round trips for every
/// event of every batch; failures are rare, so the happy path decides: docs/architecture.md.)
/// When BEGIN or COMMIT itself fails, no event is to blame: each is applied in its own
/// transaction instead.
async fn apply<H: EventHandler>(
    batcher: &Batcher<'_, H>,
    batch: &[Delivery],
    decoded: &[Decoded],
    verdicts: &mut [Option<Verdict>],
) -> Result<(), ConsumeError> {
    let service = batcher.options.service;
    let mut pooled = batcher.pool.get().await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let mut pending: Vec<&Decoded> = decoded.iter().collect();
    while !pending.is_empty() {
        let attempt = conn
            .transaction(async |conn: &mut AsyncPgConnection| {
                let mut outcomes = Vec::with_capacity(pending.len());
                for (position, one) in pending.iter().enumerate() {
                    let span = crate::trace::event_span(service, &batch[one.index], &one.envelope);
                    match apply_one(batcher.handler, conn, one).instrument(span).await {
                        Ok(handled) => outcomes.push((one.index, handled)),
                        Err(error) => return Err(Failure::Event(position, error)),
                    }
                }
                Ok::<_, Failure>(outcomes)
            })
            .await;
        match attempt {
            Ok(outcomes) => {
                for (index, handled) in outcomes {
                    verdicts[index] = Some(if handled { Verdict::Handled } else { Verdict::Duplicate });
                }
                return Ok(());
            }
            Err(Failure::Event(position, error)) => {
                let failed = pending.remove(position);
                verdicts[failed.index] = Some(judge(batcher.queue, &failed.envelope, Err(error)));
                metrics::counter!("message_batch_reruns_total", "queue" => batcher.queue.to_owned())
                    .increment(1);
            }
            Err(Failure::Db(error)) => {
                tracing::warn!(queue = %batcher.queue, %error, "batch transaction failed; applying its events one by one");
                for one in pending.drain(..) {
                    let span = crate::trace::event_span(service, &batch[one.index], &one.envelope);
                    let single = conn
                        .transaction(async |conn: &mut AsyncPgConnection| {
                            apply_one(batcher.handler, conn, one).await
                        })
                        .instrument(span)
                        .await;
                    verdicts[one.index] = Some(judge(batcher.queue, &one.envelope, single));
                }
            }
        }
    }
    Ok(())
}

/// One event: refused unless the handler declares its type; a no-op when the inbox has seen
/// it (false); else recorded and handled (true).
async fn apply_one<H: EventHandler>(
    handler: &H,
    conn: &mut AsyncPgConnection,
    one: &Decoded,
) -> Result<bool, HandleError> {
    let envelope = &one.envelope;
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
    handler.handle(conn, envelope, one.event.clone()).await?;
    Ok(true)
}

fn judge(queue: &str, envelope: &Envelope, outcome: Result<bool, HandleError>) -> Verdict {
    match outcome {
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
    }
}

/// Where one failed delivery goes next.
struct Reroute {
    index: usize,
    target: String,
    headers: FieldTable,
    expiration_ms: Option<u64>,
}

/// Step 3: retries to the retry queue of their attempt (the DLQ after the last), dead letters
/// to the DLQ, all through the service's own reroute exchange (its broker user may not
/// publish to the default one), confirmed before the batch is acked.
async fn reroute<H: EventHandler>(
    batcher: &Batcher<'_, H>,
    batch: &[Delivery],
    verdicts: &[Option<Verdict>],
) -> Result<(), ConsumeError> {
    let queue = batcher.queue;
    // One meaning for every retry setting (platform::retry): n delays between attempts, n + 1
    // attempts; the failure after the last delay is final.
    let schedule = platform::retry::RetrySchedule::new(batcher.broker.topology().retry_delays.clone());
    let dlq = dead_letter_queue(queue);
    let mut reroutes = Vec::new();
    for (index, verdict) in verdicts.iter().enumerate() {
        let delivery = &batch[index];
        let dead_letter = |reason: &str| Reroute {
            index,
            target: dlq.clone(),
            headers: headers::dead_lettered(delivery, reason),
            expiration_ms: None,
        };
        let outcome = match verdict {
            Some(Verdict::Handled) | None => "handled",
            Some(Verdict::Duplicate) => "duplicate",
            Some(Verdict::Retry(reason)) => {
                let attempt = headers::retry_count(delivery) + 1;
                match schedule.delay_after(attempt) {
                    Some(delay) => {
                        reroutes.push(Reroute {
                            index,
                            target: retry_queue(queue, delay),
                            headers: headers::retried(delivery, attempt, reason),
                            expiration_ms: Some(jittered_millis(delay)),
                        });
                        "retried"
                    }
                    None => {
                        reroutes.push(dead_letter(&format!("gave up after {attempt} attempts: {reason}")));
                        "dead_lettered"
                    }
                }
            }
            Some(Verdict::DeadLetter(reason)) => {
                reroutes.push(dead_letter(reason));
                "dead_lettered"
            }
        };
        metrics::counter!("messages_consumed_total", "queue" => queue.to_owned(), "type" => event_type_of(delivery), "outcome" => outcome).increment(1);
    }
    let exchange = reroute_exchange(queue);
    let messages: Vec<Outgoing<'_>> = reroutes
        .iter()
        .map(|reroute| {
            let delivery = &batch[reroute.index];
            Outgoing {
                exchange: &exchange,
                routing_key: &reroute.target,
                payload: &delivery.data,
                message_id: delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|id| id.to_string())
                    .unwrap_or_default(),
                headers: reroute.headers.clone(),
                expiration_ms: reroute.expiration_ms,
            }
        })
        .collect();
    batcher.broker.publish_confirmed(&messages).await?;
    Ok(())
}

fn event_type_of(delivery: &Delivery) -> String {
    serde_json::from_slice::<serde_json::Value>(&delivery.data)
        .ok()
        .and_then(|value| value.get("type").and_then(|t| t.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Up to 20 % longer (never shorter, as every retry schedule: platform::retry), so retries of
/// many messages that failed together do not return together; the retry queue's TTL is the
/// upper bound.
fn jittered_millis(delay: Duration) -> u64 {
    let jittered = platform::retry::jittered(delay, rand::random::<f64>());
    u64::try_from(jittered.as_millis()).unwrap_or(u64::MAX).max(1)
}
