//! Housekeeping on a schedule: expired idempotency keys and stale login-backoff counts are
//! deleted in bounded batches, so neither table grows without end and no single run holds
//! locks for long. Every replica runs it; `SKIP LOCKED` in the deletes keeps them from queueing
//! on each other's rows.

use platform::db::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const INTERVAL: Duration = Duration::from_secs(60);
/// Rows per delete statement (one short transaction each).
pub const BATCH: i64 = 1000;
/// Statements per table per run: at most `BATCH × BATCHES_PER_RUN` rows a minute per replica,
/// far above the rate keys are written, so a backlog drains within a few runs.
const BATCHES_PER_RUN: usize = 20;

/// Runs `purge_once` every [`INTERVAL`] (the first right away) until `cancel`.
pub async fn run(pool: PgPool, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => return,
        }
        match purge_once(&pool, BATCH).await {
            Ok((0, 0)) => {}
            Ok((keys, attempts)) => tracing::debug!(keys, attempts, "purged expired rows"),
            Err(error) => tracing::warn!(%error, "cannot purge expired idempotency keys or login counts"),
        }
    }
}

/// One run: (idempotency keys, login counts) deleted.
pub async fn purge_once(pool: &PgPool, batch: i64) -> anyhow::Result<(usize, usize)> {
    let mut conn = pool.get().await?;
    let (mut keys, mut attempts) = (0, 0);
    for _ in 0..BATCHES_PER_RUN {
        let deleted = crate::idempotency::purge_expired(&mut conn, batch).await?;
        keys += deleted;
        if (deleted as i64) < batch {
            break;
        }
    }
    for _ in 0..BATCHES_PER_RUN {
        let deleted = crate::accounts::backoff::purge_stale(&mut conn, batch).await?;
        attempts += deleted;
        if (deleted as i64) < batch {
            break;
        }
    }
    Ok((keys, attempts))
}
