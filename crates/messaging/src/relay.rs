//! The outbox relay: publishes committed events in batches with publisher confirms (all sent,
//! then all confirms awaited: one round trip per batch) and deletes them, in one statement, once
//! RabbitMQ has them. It sleeps until PostgreSQL's `NOTIFY outbox_<schema>` (sent at commit by
//! a trigger) or a polling tick wakes it, so nothing on the hot path polls and a lost notification costs
//! at most one poll interval. Woken, it lingers a moment (`OUTBOX_RELAY_LINGER_MS`) so that a
//! burst of commits, each with its own notification, goes out as one round, not one per
//! commit; a full batch is followed at once by the next. Replicas share the work through
//! `FOR UPDATE SKIP LOCKED`.

use crate::broker::{Broker, BrokerError, Outgoing};
use crate::headers;
use crate::schema::outbox;
use crate::topology::EXCHANGE;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt;
use lapin::types::FieldTable;
use platform::db::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// The publishing service, the `service` label of the backlog gauges.
    pub service: &'static str,
    pub batch_size: i64,
    /// After a wake-up, how long to let more commits arrive before publishing.
    pub linger: Duration,
    /// How often to look for rows when no notification arrives (a safety net only).
    pub poll_interval: Duration,
    /// On shutdown, how long to keep flushing before giving up (the rows stay for next start).
    pub drain_timeout: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            service: "unknown",
            batch_size: 500,
            linger: Duration::from_millis(5),
            poll_interval: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error(transparent)]
    Pool(#[from] diesel_async::pooled_connection::deadpool::PoolError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = outbox)]
struct PendingEvent {
    seq: i64,
    event_id: uuid::Uuid,
    routing_key: String,
    payload: Vec<u8>,
    traceparent: Option<String>,
}

pub async fn run(pool: PgPool, broker: Broker, options: RelayOptions, cancel: CancellationToken) {
    let wake = Arc::new(Notify::new());
    tokio::spawn(listen(pool.clone(), wake.clone(), cancel.clone()));
    let mut failures = 0u32;
    let mut last_gauge = tokio::time::Instant::now() - GAUGE_INTERVAL;
    while !cancel.is_cancelled() {
        if broker.connection(&cancel).await.is_none() {
            break;
        }
        match publish_batch(&pool, &broker, options.batch_size).await {
            Ok(published) if published as i64 == options.batch_size => {
                failures = 0;
                continue;
            }
            Ok(_) => {
                failures = 0;
                if last_gauge.elapsed() >= GAUGE_INTERVAL {
                    last_gauge = tokio::time::Instant::now();
                    report_backlog(&pool, options.service).await;
                }
                let woken = tokio::select! {
                    _ = wake.notified() => true,
                    _ = tokio::time::sleep(options.poll_interval) => false,
                    _ = cancel.cancelled() => false,
                };
                if woken && !options.linger.is_zero() {
                    tokio::select! {
                        _ = tokio::time::sleep(options.linger) => {}
                        _ = cancel.cancelled() => {}
                    }
                }
            }
            Err(error) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(50) {
                    tracing::warn!(%error, failures, "outbox relay cannot publish; events stay in the outbox");
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = cancel.cancelled() => {}
                }
            }
        }
    }
    drain(&pool, &broker, &options).await;
}

/// The backlog gauges are refreshed at most this often (the relay may poll far more often).
const GAUGE_INTERVAL: Duration = Duration::from_secs(1);

/// `outbox_backlog_events` and `outbox_oldest_event_age_seconds`: what waits to be published,
/// and for how long (a growing age means the relay or the broker is stuck).
async fn report_backlog(pool: &PgPool, service: &'static str) {
    let Ok(mut conn) = pool.get().await else { return };
    match crate::outbox::backlog(&mut conn).await {
        Ok((count, age)) => {
            metrics::gauge!("outbox_backlog_events", "service" => service).set(count as f64);
            metrics::gauge!("outbox_oldest_event_age_seconds", "service" => service).set(age);
        }
        Err(error) => tracing::debug!(%error, "cannot measure the outbox backlog"),
    }
}

/// Publishes what is left at shutdown, within the drain timeout.
async fn drain(pool: &PgPool, broker: &Broker, options: &RelayOptions) {
    let deadline = tokio::time::Instant::now() + options.drain_timeout;
    while tokio::time::Instant::now() < deadline && broker.is_connected() {
        match tokio::time::timeout_at(deadline, publish_batch(pool, broker, options.batch_size)).await {
            Ok(Ok(0)) => return,
            Ok(Ok(_)) => continue,
            Ok(Err(error)) => {
                tracing::warn!(%error, "could not flush the outbox at shutdown; it will be published at next start");
                return;
            }
            Err(_) => break,
        }
    }
}

async fn publish_batch(pool: &PgPool, broker: &Broker, batch_size: i64) -> Result<usize, RelayError> {
    let mut pooled = pool.get().await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let published = conn
        .transaction(async |conn: &mut AsyncPgConnection| {
            let pending: Vec<PendingEvent> = outbox::table
                .select(PendingEvent::as_select())
                .order(outbox::seq)
                .limit(batch_size)
                .for_update()
                .skip_locked()
                .load(conn)
                .await?;
            if pending.is_empty() {
                return Ok::<_, RelayError>(0);
            }
            let messages: Vec<Outgoing<'_>> = pending
                .iter()
                .map(|event| {
                    let mut headers = FieldTable::default();
                    if let Some(traceparent) = &event.traceparent {
                        headers.insert("traceparent".into(), headers::string(traceparent));
                    }
                    Outgoing {
                        exchange: EXCHANGE,
                        routing_key: &event.routing_key,
                        payload: &event.payload,
                        message_id: event.event_id.to_string(),
                        headers,
                        expiration_ms: None,
                    }
                })
                .collect();
            broker.publish_confirmed(&messages).await?;
            let seqs: Vec<i64> = pending.iter().map(|event| event.seq).collect();
            diesel::delete(outbox::table.filter(outbox::seq.eq_any(&seqs))).execute(conn).await?;
            Ok(pending.len())
        })
        .await?;
    if published > 0 {
        metrics::counter!("outbox_events_published_total").increment(published as u64);
        // Events per round = the two counters' ratio: how well bursts are grouped.
        metrics::counter!("outbox_publish_rounds_total").increment(1);
    }
    Ok(published)
}

/// Holds one connection with `LISTEN outbox_<schema>` and turns notifications into wake-ups.
async fn listen(pool: PgPool, wake: Arc<Notify>, cancel: CancellationToken) {
    while !cancel.is_cancelled() {
        let outcome = async {
            let mut conn = deadpool::managed::Object::take(pool.get().await.map_err(|e| e.to_string())?);
            // The trigger notifies `outbox_<schema of the outbox table>`: this service's only
            // (migration 2; the services may share a database, and NOTIFY is per database).
            diesel::sql_query(
                "DO $$ BEGIN EXECUTE format('LISTEN %I', 'outbox_' || current_schema()); END $$",
            )
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
            let mut notifications = std::pin::pin!(conn.notifications_stream());
            loop {
                tokio::select! {
                    next = notifications.next() => match next {
                        Some(Ok(_)) => wake.notify_one(),
                        Some(Err(error)) => return Err(error.to_string()),
                        None => return Err("notification stream ended".to_owned()),
                    },
                    _ = cancel.cancelled() => return Ok(()),
                }
            }
        }
        .await;
        if let Err(error) = outcome {
            tracing::debug!(%error, "outbox listener lost its connection; polling until it is back");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = cancel.cancelled() => {}
            }
        }
    }
}
