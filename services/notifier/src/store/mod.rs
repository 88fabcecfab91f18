//! The notifier's tables and the only SQL in the service. Query functions take a connection so
//! they compose inside the caller's transaction.

pub mod admin;
pub mod ledger;
pub mod summaries;

use crate::domain::{Channel, Delivery};
use chrono::{DateTime, Utc};
use contracts::events::NotificationKind;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

pub(crate) use crate::schema::notifier::{notification_attempts, notifications};

contracts::text_enum! {
    /// Where a notification stands. `logged`: a log-only provider took the message; it was not sent.
    pub enum NotificationStatus {
        Pending,
        Sent,
        Logged,
        Failed,
    }
}

contracts::text_enum! {
    /// What one attempt came to, in `notification_attempts.outcome`.
    pub enum AttemptOutcome {
        Sent,
        Logged,
        Retry,
        Failed,
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = notifications)]
pub struct Notification {
    pub id: Uuid,
    pub order_id: Uuid,
    pub kind: NotificationKind,
    pub channel: Channel,
    pub recipient: String,
    pub subject: String,
    pub status: NotificationStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// Who took the message (`smtp`, `mail_dir`, `http`, `log`); `None` until then.
    pub provider: Option<String>,
}

/// A row the sender has leased and must now deliver.
#[derive(Debug, Clone, QueryableByName)]
#[diesel(table_name = notifications)]
pub struct Claimed {
    pub id: Uuid,
    pub order_id: Uuid,
    pub kind: NotificationKind,
    pub channel: Channel,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub html_body: Option<String>,
    pub attempts: i32,
    /// The trace of the event that asked for this message.
    pub traceparent: Option<String>,
}

/// Records a message to send; returns false when this order already has one of this kind on
/// this channel (a redelivered or replayed event), which is not an error.
pub async fn insert(
    conn: &mut AsyncPgConnection,
    order_id: Uuid,
    kind: NotificationKind,
    delivery: &Delivery<'_>,
) -> QueryResult<bool> {
    let inserted = diesel::insert_into(notifications::table)
        .values((
            notifications::id.eq(Uuid::now_v7()),
            notifications::order_id.eq(order_id),
            notifications::kind.eq(kind),
            notifications::channel.eq(delivery.channel),
            notifications::recipient.eq(delivery.recipient),
            notifications::subject.eq(delivery.subject),
            notifications::body.eq(delivery.body),
            notifications::html_body.eq(delivery.html_body),
            notifications::status.eq(NotificationStatus::Pending),
            notifications::traceparent.eq(platform::trace::current_traceparent()),
        ))
        .on_conflict((notifications::order_id, notifications::kind, notifications::channel))
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(inserted == 1)
}

/// Leases up to `limit` due rows in one statement. `SKIP LOCKED` lets several notifier
/// instances claim side by side without waiting on or double-claiming each other's rows.
/// The row stays invisible to other workers for `lease` (`NOTIFICATION_LEASE_MS`).
pub async fn claim_due(
    conn: &mut AsyncPgConnection,
    limit: i64,
    lease: std::time::Duration,
) -> QueryResult<Vec<Claimed>> {
    diesel::sql_query(
        "UPDATE notifications SET next_attempt_at = now() + $1 * interval '1 millisecond' \
         WHERE id IN (SELECT id FROM notifications \
                      WHERE status = $3 AND next_attempt_at <= now() \
                      ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
         RETURNING id, order_id, kind, channel, recipient, subject, body, html_body, attempts, traceparent",
    )
    .bind::<BigInt, _>(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
    .bind::<BigInt, _>(limit)
    .bind::<Text, _>(NotificationStatus::Pending)
    .load(conn)
    .await
}

/// Marks a leased row `sent` or `logged` by `provider`. Returns false if it was no longer
/// pending (another sender took it after our lease expired), so the caller does not announce
/// the same message twice.
pub async fn mark_delivered(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    status: NotificationStatus,
    provider: &str,
) -> QueryResult<bool> {
    let updated = diesel::sql_query(
        "UPDATE notifications SET status = $2, provider = $3, sent_at = now(), attempts = attempts + 1, \
           last_error = NULL \
         WHERE id = $1 AND status = $4",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(status)
    .bind::<Text, _>(provider)
    .bind::<Text, _>(NotificationStatus::Pending)
    .execute(conn)
    .await?;
    Ok(updated == 1)
}

/// Records a failed attempt and when to try again.
pub async fn schedule_retry(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    error: &str,
    delay_ms: i64,
) -> QueryResult<bool> {
    let updated = diesel::sql_query(
        "UPDATE notifications SET attempts = attempts + 1, last_error = $2, \
         next_attempt_at = now() + make_interval(secs => $3::double precision / 1000) \
         WHERE id = $1 AND status = $4",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(error)
    .bind::<BigInt, _>(delay_ms)
    .bind::<Text, _>(NotificationStatus::Pending)
    .execute(conn)
    .await?;
    Ok(updated == 1)
}

/// Gives up on a row; returns false if it was no longer pending.
pub async fn mark_failed(conn: &mut AsyncPgConnection, id: Uuid, error: &str) -> QueryResult<bool> {
    let updated = diesel::sql_query(
        "UPDATE notifications SET status = $3, attempts = attempts + 1, last_error = $2 \
         WHERE id = $1 AND status = $4",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(error)
    .bind::<Text, _>(NotificationStatus::Failed)
    .bind::<Text, _>(NotificationStatus::Pending)
    .execute(conn)
    .await?;
    Ok(updated == 1)
}

/// One line of a notification's history, with the error or the provider that took it.
pub async fn record_attempt(
    conn: &mut AsyncPgConnection,
    notification_id: Uuid,
    outcome: AttemptOutcome,
    error: Option<&str>,
    provider: Option<&str>,
) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO notification_attempts (id, notification_id, outcome, error, provider) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind::<SqlUuid, _>(Uuid::now_v7())
    .bind::<SqlUuid, _>(notification_id)
    .bind::<Text, _>(outcome)
    .bind::<Nullable<Text>, _>(error)
    .bind::<Nullable<Text>, _>(provider)
    .execute(conn)
    .await?;
    Ok(())
}
