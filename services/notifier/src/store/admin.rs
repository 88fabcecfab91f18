//! Operator queries: listing with filters and a cursor, an attempt history, and moving failed
//! rows back to pending. Only `failed` rows ever move, so a sent message is never sent again.

use super::{AttemptOutcome, Notification, NotificationStatus, notification_attempts, notifications};
use crate::domain::Channel;
use chrono::{DateTime, Utc};
use contracts::events::NotificationKind;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub order_id: Option<Uuid>,
    pub status: Option<NotificationStatus>,
    pub kind: Option<NotificationKind>,
    pub channel: Option<Channel>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// The last id of the previous page: rows older than it (ids are UUIDv7).
    pub cursor: Option<Uuid>,
}

/// Newest first.
pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &ListFilter,
    limit: i64,
) -> QueryResult<Vec<Notification>> {
    let mut query = notifications::table
        .select(Notification::as_select())
        .order(notifications::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(order_id) = filter.order_id {
        query = query.filter(notifications::order_id.eq(order_id));
    }
    if let Some(status) = filter.status {
        query = query.filter(notifications::status.eq(status));
    }
    if let Some(kind) = filter.kind {
        query = query.filter(notifications::kind.eq(kind));
    }
    if let Some(channel) = filter.channel {
        query = query.filter(notifications::channel.eq(channel));
    }
    if let Some(after) = filter.created_after {
        query = query.filter(notifications::created_at.ge(after));
    }
    if let Some(before) = filter.created_before {
        query = query.filter(notifications::created_at.lt(before));
    }
    if let Some(cursor) = filter.cursor {
        query = query.filter(notifications::id.lt(cursor));
    }
    query.load(conn).await
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Notification>> {
    notifications::table.find(id).select(Notification::as_select()).first(conn).await.optional()
}

#[derive(Debug, Clone, Queryable)]
pub struct Attempt {
    pub attempted_at: DateTime<Utc>,
    pub outcome: AttemptOutcome,
    pub error: Option<String>,
    pub provider: Option<String>,
}

/// Every attempt at one notification, oldest first, across retries.
pub async fn attempts(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Vec<Attempt>> {
    notification_attempts::table
        .filter(notification_attempts::notification_id.eq(id))
        .order((notification_attempts::attempted_at, notification_attempts::id))
        .select((
            notification_attempts::attempted_at,
            notification_attempts::outcome,
            notification_attempts::error,
            notification_attempts::provider,
        ))
        .load(conn)
        .await
}

/// Moves one failed row back to pending with a fresh attempt budget; false when the row is
/// not failed (pending or sent rows are left alone).
pub async fn retry_one(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
    let updated = diesel::sql_query(
        "UPDATE notifications SET status = $2, attempts = 0, last_error = NULL, next_attempt_at = now() \
         WHERE id = $1 AND status = $3",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(NotificationStatus::Pending)
    .bind::<Text, _>(NotificationStatus::Failed)
    .execute(conn)
    .await?;
    Ok(updated == 1)
}

/// Moves up to `limit` failed rows created in [`since`, `until`) back to pending, oldest first;
/// returns how many moved. Their earlier attempts stay in `notification_attempts`.
pub async fn retry_failed(
    conn: &mut AsyncPgConnection,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    limit: i64,
) -> QueryResult<usize> {
    diesel::sql_query(
        "UPDATE notifications SET status = $4, attempts = 0, last_error = NULL, next_attempt_at = now() \
         WHERE id IN (SELECT id FROM notifications WHERE status = $5 \
                        AND ($1::timestamptz IS NULL OR created_at >= $1) \
                        AND ($2::timestamptz IS NULL OR created_at < $2) \
                      ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) \
           AND status = $5",
    )
    .bind::<Nullable<Timestamptz>, _>(since)
    .bind::<Nullable<Timestamptz>, _>(until)
    .bind::<BigInt, _>(limit)
    .bind::<Text, _>(NotificationStatus::Pending)
    .bind::<Text, _>(NotificationStatus::Failed)
    .execute(conn)
    .await
}
