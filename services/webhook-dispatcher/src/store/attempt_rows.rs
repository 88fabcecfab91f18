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
