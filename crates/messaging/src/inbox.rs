//! The consumer's half of exactly-once effects: an event id is recorded in the same transaction
//! as the handler's effects. Rows are kept for `INBOX_RETENTION_HOURS` ([`prune`], run by the
//! chassis, [`prune_once`]), long enough to outlast every redelivery the broker or an operator can cause:
//! the retry schedule, and a dead letter replayed within the retention.

use crate::schema::inbox;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// Records `event_id`; false when it was already handled (a redelivery or a replay). A concurrent
/// duplicate waits on the primary key until the first transaction ends, then sees the row.
pub async fn record(
    conn: &mut AsyncPgConnection,
    event_id: uuid::Uuid,
    event_type: &str,
) -> QueryResult<bool> {
    let inserted = diesel::insert_into(inbox::table)
        .values((inbox::event_id.eq(event_id), inbox::event_type.eq(event_type)))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(inserted == 1)
}

pub async fn contains(conn: &mut AsyncPgConnection, event_id: uuid::Uuid) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(inbox::table.find(event_id))).get_result(conn).await
}

/// Deletes up to `batch` rows handled more than `older_than` ago, oldest first; returns how
/// many went. `SKIP LOCKED` lets replicas prune side by side without waiting on each other.
pub async fn prune(
    conn: &mut AsyncPgConnection,
    older_than: std::time::Duration,
    batch: i64,
) -> QueryResult<usize> {
    use diesel::sql_types::{BigInt, Double};
    diesel::sql_query(
        "DELETE FROM inbox WHERE event_id IN (SELECT event_id FROM inbox \
         WHERE handled_at < now() - make_interval(secs => $1) \
         ORDER BY handled_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind::<Double, _>(older_than.as_secs_f64())
    .bind::<BigInt, _>(batch)
    .execute(conn)
    .await
}

/// How much one pruning run may delete: bounded work, so a first run on a large backlog takes
/// a few runs instead of one long lock-holding delete.
pub const PRUNE_BATCH: i64 = 5_000;
pub const PRUNE_BATCHES_PER_RUN: usize = 10;

/// Deletes rows handled more than `retention` ago, at most [`PRUNE_BATCHES_PER_RUN`] batches
/// of [`PRUNE_BATCH`]; returns how many went.
pub async fn prune_once(
    pool: &platform::db::PgPool,
    retention: std::time::Duration,
) -> Result<usize, PruneError> {
    let mut conn = pool.get().await?;
    let mut pruned = 0;
    for _ in 0..PRUNE_BATCHES_PER_RUN {
        let deleted = prune(&mut conn, retention, PRUNE_BATCH).await?;
        pruned += deleted;
        if (deleted as i64) < PRUNE_BATCH {
            break;
        }
    }
    Ok(pruned)
}

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error("database unavailable: {0}")]
    Pool(#[from] diesel_async::pooled_connection::deadpool::PoolError),
}
