//! The attempt log kept for `webhook_attempt_retention_days`, then deleted: every POST adds a
//! row (with up to 4 KiB of the answer), so without pruning the table grows for ever. Work is
//! bounded per run (batches of [`BATCH`] rows, each its own short statement, at most
//! [`BATCHES_PER_RUN`] a run), so a large backlog drains over several runs without holding
//! locks or I/O for long. Every replica runs it; `SKIP LOCKED` keeps them off each other's rows.

use platform::db::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const INTERVAL: Duration = Duration::from_secs(600);
/// Rows per delete statement.
pub const BATCH: i64 = 1000;
/// Statements per run: up to 20 000 rows every 10 minutes per replica, far above the rate
/// attempts are written, so a backlog (a first run on an old table) drains within hours.
const BATCHES_PER_RUN: usize = 20;

/// Runs [`prune_once`] every [`INTERVAL`] (the first right away) until `cancel`.
pub async fn run(pool: PgPool, retention_days: u32, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => return,
        }
        match prune_once(&pool, retention_days, BATCH).await {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, retention_days, "pruned old webhook attempts"),
            Err(error) => tracing::warn!(%error, "cannot prune old webhook attempts; will retry"),
        }
    }
}

/// One run: deletes attempts older than `retention_days`, `batch` rows a statement, until a
/// statement finds fewer than `batch` or the run's budget is spent; returns how many.
pub async fn prune_once(pool: &PgPool, retention_days: u32, batch: i64) -> anyhow::Result<usize> {
    let days = i32::try_from(retention_days)?;
    let mut conn = pool.get().await?;
    let mut total = 0;
    for _ in 0..BATCHES_PER_RUN {
        let deleted = crate::store::delete_attempts_older_than(&mut conn, days, batch).await?;
        total += deleted;
        if (deleted as i64) < batch {
            break;
        }
    }
    Ok(total)
}
