//! One `LISTEN order_status` connection per replica. A notification (sent at commit by the
//! trigger on `order_status_history`) or a tick wakes it; it then reads every settled row after
//! the last one it sent and broadcasts them. It reads from the database rather than trusting
//! the notification, so a notification missed while the connection was down, or a row held
//! back because an older transaction was still running, is picked up on the next read.

use super::{Hub, Position, Scope, store};
use anyhow::Context;
use futures_util::StreamExt;
use platform::db::{PgPool, PooledConnection};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A read without a notification: a row held back by a transaction that ended without writing
/// history waits at most this long.
const TICK: Duration = Duration::from_millis(500);
/// Rows read per query.
const BATCH: i64 = 500;

/// Runs until `cancel`; reconnects (and reads what it missed) when its connection drops.
pub async fn run(pool: PgPool, hub: Arc<Hub>, cancel: CancellationToken) {
    // Starts at the end of the history: streams replay what came before themselves.
    let mut cursor = loop {
        match start(&pool).await {
            Ok(position) => break position,
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "live updates cannot read the history yet")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = cancel.cancelled() => return,
        }
    };
    while !cancel.is_cancelled() {
        if let Err(error) = listen(&pool, &hub, &mut cursor, &cancel).await {
            tracing::warn!(error = format!("{error:#}"), "live updates lost their listener; reconnecting");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = cancel.cancelled() => {}
            }
        }
    }
}

async fn start(pool: &PgPool) -> anyhow::Result<Position> {
    let mut conn = pool.get().await?;
    Ok(store::head(&mut conn).await?)
}

async fn listen(
    pool: &PgPool,
    hub: &Hub,
    cursor: &mut Position,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    // Its own connection, out of the pool for good: it must stay open to hear notifications.
    let mut conn = PooledConnection::take(pool.get().await?);
    diesel_async::RunQueryDsl::execute(diesel::sql_query("LISTEN order_status"), &mut conn)
        .await
        .context("LISTEN order_status")?;
    let mut notifications = std::pin::pin!(conn.notifications_stream());
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // The first pass (right after LISTEN) reads whatever committed while nobody listened.
        if let Err(error) = forward(pool, hub, cursor).await {
            tracing::warn!(error = format!("{error:#}"), "live updates cannot read new history; will retry");
        }
        tokio::select! {
            next = notifications.next() => match next {
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error).context("notification stream"),
                None => anyhow::bail!("the notification stream ended"),
            },
            _ = tick.tick() => {}
            _ = cancel.cancelled() => return Ok(()),
        }
    }
}

/// Broadcasts every settled row after `cursor`, moving it on.
async fn forward(pool: &PgPool, hub: &Hub, cursor: &mut Position) -> anyhow::Result<()> {
    let mut conn = pool.get().await?;
    loop {
        let rows = store::settled_after(&mut conn, *cursor, Scope::All, BATCH).await?;
        let full = rows.len() as i64 == BATCH;
        for event in rows {
            *cursor = event.position;
            hub.publish(event);
        }
        if !full {
            return Ok(());
        }
    }
}
