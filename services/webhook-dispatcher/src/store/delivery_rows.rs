//! `deliveries`: one row per (endpoint, event), driven by `next_attempt_at`.

use super::{DeliveryStatus, deliveries, endpoints, millis};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bytea, Integer, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use std::time::Duration;
use uuid::Uuid;

/// A delivery as listed to integrators (without the payload, which they already received).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = deliveries)]
pub struct Delivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub order_id: Option<Uuid>,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// One event to fan out to its subscribers.
pub struct Fanout<'a> {
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub order_id: Option<Uuid>,
    pub payload: &'a [u8],
}

/// Queues one pending delivery per enabled endpoint subscribed to the event (an empty
/// subscription list means all types). Returns how many were queued; a repeated event queues
/// none, thanks to `UNIQUE (endpoint_id, event_id)`.
pub async fn fan_out(conn: &mut AsyncPgConnection, event: &Fanout<'_>) -> QueryResult<usize> {
    let subscribers: Vec<Uuid> = endpoints::table
        .filter(endpoints::enabled)
        .filter(
            endpoints::event_types
                .contains(vec![event.event_type.to_owned()])
                .or(endpoints::event_types.eq(Vec::<String>::new())),
        )
        .select(endpoints::id)
        .order(endpoints::id)
        .load(conn)
        .await?;
    if subscribers.is_empty() {
        return Ok(0);
    }
    let rows: Vec<_> = subscribers
        .into_iter()
        .map(|endpoint_id| {
            (
                deliveries::id.eq(Uuid::now_v7()),
                deliveries::endpoint_id.eq(endpoint_id),
                deliveries::event_id.eq(event.event_id),
                deliveries::event_type.eq(event.event_type),
                deliveries::order_id.eq(event.order_id),
                deliveries::payload.eq(event.payload),
                deliveries::status.eq(DeliveryStatus::Pending),
            )
        })
        .collect();
    diesel::insert_into(deliveries::table)
        .values(rows)
        .on_conflict((deliveries::endpoint_id, deliveries::event_id))
        .do_nothing()
        .execute(conn)
        .await
}

/// A due delivery a worker has leased, with what it needs to send it.
#[derive(Debug, Clone, QueryableByName)]
pub struct Claimed {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub endpoint_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub event_id: Uuid,
    #[diesel(sql_type = Text)]
    pub event_type: String,
    #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
    pub order_id: Option<Uuid>,
    #[diesel(sql_type = Bytea)]
    pub payload: Vec<u8>,
    /// Attempts made before this one.
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    /// Attempts made before the current retry schedule began.
    #[diesel(sql_type = Integer)]
    pub schedule_base: i32,
    #[diesel(sql_type = Text)]
    pub url: String,
    /// Sealed ([`crate::secrets`]); the worker opens it just before the attempt.
    #[diesel(sql_type = Text)]
    pub secret: String,
    /// The secret rotated out less than a day ago, which still signs (sealed).
    #[diesel(sql_type = Nullable<Text>)]
    pub previous_secret: Option<String>,
    #[diesel(sql_type = Jsonb)]
    pub headers: serde_json::Value,
}

/// Leases up to `limit` due deliveries, none of `busy` endpoints, by pushing their
/// `next_attempt_at` past `lease`, in one statement. `SKIP LOCKED` keeps concurrent workers off
/// each other's rows; the lease (not a held transaction) keeps them off rows being sent, and
/// hands the rows back if the worker dies.
pub async fn claim_due(
    conn: &mut AsyncPgConnection,
    lease: Duration,
    limit: i64,
    busy: &[Uuid],
) -> QueryResult<Vec<Claimed>> {
    diesel::sql_query(
        "WITH due AS ( \
             SELECT d.id FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id \
             WHERE d.status = $4 AND d.next_attempt_at <= now() AND e.enabled \
               AND NOT (d.endpoint_id = ANY($3)) \
             ORDER BY d.next_attempt_at LIMIT $2 \
             FOR UPDATE OF d SKIP LOCKED) \
         UPDATE deliveries d SET next_attempt_at = now() + $1 * interval '1 millisecond' \
         FROM due, endpoints e \
         WHERE d.id = due.id AND e.id = d.endpoint_id \
         RETURNING d.id, d.endpoint_id, d.event_id, d.event_type, d.order_id, d.payload, d.attempts, \
             d.schedule_base, e.url, e.secret, e.headers, \
             CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END AS previous_secret",
    )
    .bind::<BigInt, _>(millis(lease))
    .bind::<BigInt, _>(limit)
    .bind::<Array<diesel::sql_types::Uuid>, _>(busy)
    .bind::<Text, _>(DeliveryStatus::Pending)
    .load(conn)
    .await
}

/// Hands leased rows back unattempted (more were claimed than an endpoint may have in flight).
pub async fn release(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> QueryResult<usize> {
    diesel::update(
        deliveries::table
            .filter(deliveries::id.eq_any(ids))
            .filter(deliveries::status.eq(DeliveryStatus::Pending)),
    )
    .set(deliveries::next_attempt_at.eq(diesel::dsl::now))
    .execute(conn)
    .await
}

/// Records a successful attempt; false when the row was no longer pending (nothing to announce).
pub async fn mark_delivered(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    attempts: i32,
    status_code: i32,
) -> QueryResult<bool> {
    let updated =
        diesel::update(deliveries::table.find(id).filter(deliveries::status.eq(DeliveryStatus::Pending)))
            .set((
                deliveries::status.eq(DeliveryStatus::Delivered),
                deliveries::attempts.eq(attempts),
                deliveries::last_status_code.eq(Some(status_code)),
                deliveries::last_error.eq(None::<String>),
                deliveries::delivered_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await?;
    Ok(updated == 1)
}

/// Records a failed attempt and makes the row due again after `delay` (database clock, the
/// same one `claim_due` compares against).
pub async fn schedule_retry(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    attempts: i32,
    status_code: Option<i32>,
    error: &str,
    delay: Duration,
) -> QueryResult<()> {
    let due = diesel::dsl::sql::<Timestamptz>("now() + ")
        .bind::<BigInt, _>(millis(delay))
        .sql(" * interval '1 millisecond'");
    diesel::update(deliveries::table.find(id).filter(deliveries::status.eq(DeliveryStatus::Pending)))
        .set((
            deliveries::attempts.eq(attempts),
            deliveries::last_status_code.eq(status_code),
            deliveries::last_error.eq(Some(error)),
            deliveries::next_attempt_at.eq(due),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the last failed attempt; false when the row was no longer pending.
pub async fn mark_failed(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    attempts: i32,
    status_code: Option<i32>,
    error: &str,
) -> QueryResult<bool> {
    let updated =
        diesel::update(deliveries::table.find(id).filter(deliveries::status.eq(DeliveryStatus::Pending)))
            .set((
                deliveries::status.eq(DeliveryStatus::Failed),
                deliveries::attempts.eq(attempts),
                deliveries::last_status_code.eq(status_code),
                deliveries::last_error.eq(Some(error)),
            ))
            .execute(conn)
            .await?;
    Ok(updated == 1)
}

/// Filters of the delivery log.
#[derive(Debug, Default)]
pub struct DeliveryFilter {
    pub event_id: Option<Uuid>,
    pub status: Option<DeliveryStatus>,
    pub after: Option<Uuid>,
}

pub async fn list_deliveries(
    conn: &mut AsyncPgConnection,
    endpoint_id: Uuid,
    filter: &DeliveryFilter,
    limit: i64,
) -> QueryResult<Vec<Delivery>> {
    let mut query = deliveries::table
        .filter(deliveries::endpoint_id.eq(endpoint_id))
        .select(Delivery::as_select())
        .order(deliveries::id)
        .limit(limit)
        .into_boxed();
    if let Some(after) = filter.after {
        query = query.filter(deliveries::id.gt(after));
    }
    if let Some(event_id) = filter.event_id {
        query = query.filter(deliveries::event_id.eq(event_id));
    }
    if let Some(status) = filter.status {
        query = query.filter(deliveries::status.eq(status));
    }
    query.load(conn).await
}

pub async fn find_delivery(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Delivery>> {
    deliveries::table.find(id).select(Delivery::as_select()).first(conn).await.optional()
}

/// Makes a delivery due now, whatever its state, with a fresh retry schedule.
pub async fn resend(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Delivery>> {
    diesel::update(deliveries::table.find(id))
        .set((
            deliveries::status.eq(DeliveryStatus::Pending),
            deliveries::next_attempt_at.eq(diesel::dsl::now),
            deliveries::schedule_base.eq(deliveries::attempts),
        ))
        .returning(Delivery::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Makes every failed delivery of the endpoint created since `since` due now, each with a
/// fresh retry schedule; returns how many.
pub async fn recover(
    conn: &mut AsyncPgConnection,
    endpoint_id: Uuid,
    since: DateTime<Utc>,
) -> QueryResult<usize> {
    diesel::update(
        deliveries::table
            .filter(deliveries::endpoint_id.eq(endpoint_id))
            .filter(deliveries::status.eq(DeliveryStatus::Failed))
            .filter(deliveries::created_at.ge(since)),
    )
    .set((
        deliveries::status.eq(DeliveryStatus::Pending),
        deliveries::next_attempt_at.eq(diesel::dsl::now),
        deliveries::schedule_base.eq(deliveries::attempts),
    ))
    .execute(conn)
    .await
}
