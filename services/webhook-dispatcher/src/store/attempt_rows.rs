//! `attempts`: every POST we made, with what came back, for the delivery log.

use super::attempts;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = attempts)]
pub struct Attempt {
    pub id: Uuid,
    pub delivery_id: Uuid,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = attempts)]
pub struct NewAttempt<'a> {
    pub id: Uuid,
    pub delivery_id: Uuid,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    pub response_body: Option<&'a str>,
    pub error: Option<&'a str>,
}

pub async fn insert_attempt(conn: &mut AsyncPgConnection, attempt: &NewAttempt<'_>) -> QueryResult<()> {
    diesel::insert_into(attempts::table).values(attempt).execute(conn).await?;
    Ok(())
}

/// The attempts of these deliveries, oldest first.
pub async fn attempts_of(conn: &mut AsyncPgConnection, delivery_ids: &[Uuid]) -> QueryResult<Vec<Attempt>> {
    attempts::table
        .filter(attempts::delivery_id.eq_any(delivery_ids))
        .select(Attempt::as_select())
        .order((attempts::delivery_id, attempts::id))
        .load(conn)
        .await
}

/// Deletes up to `batch` attempts made more than `retention_days` ago, oldest first; returns
/// how many. `SKIP LOCKED` lets several replicas prune at once without queueing on each
/// other's rows. Ages are measured on the database's clock, the one that stamped them.
pub async fn delete_attempts_older_than(
    conn: &mut AsyncPgConnection,
    retention_days: i32,
    batch: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM attempts WHERE id IN ( \
           SELECT id FROM attempts WHERE attempted_at < now() - make_interval(days => $1) \
           ORDER BY attempted_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind::<diesel::sql_types::Integer, _>(retention_days)
    .bind::<diesel::sql_types::BigInt, _>(batch)
    .execute(conn)
    .await
}
