//! The dispatcher's tables and the only SQL in the service. Query functions take a connection
//! so they compose inside the caller's transaction.

use crate::domain::NewEndpoint;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bytea, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use std::time::Duration;
use uuid::Uuid;

diesel::table! {
    endpoints (id) {
        id -> Uuid,
        url -> Text,
        description -> Nullable<Text>,
        event_types -> Array<Text>,
        secret -> Text,
        enabled -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    deliveries (id) {
        id -> Uuid,
        endpoint_id -> Uuid,
        event_id -> Uuid,
        event_type -> Text,
        order_id -> Nullable<Uuid>,
        payload -> Bytea,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamptz,
        last_status_code -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(deliveries -> endpoints (endpoint_id));
diesel::allow_tables_to_appear_in_same_query!(endpoints, deliveries);

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = endpoints)]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub secret: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A delivery as listed to integrators (without the payload, which they already received).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = deliveries)]
pub struct Delivery {
    pub id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub order_id: Option<Uuid>,
    pub status: String,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

pub async fn insert_endpoint(
    conn: &mut AsyncPgConnection,
    endpoint: &NewEndpoint,
    secret: &str,
) -> QueryResult<Endpoint> {
    diesel::insert_into(endpoints::table)
        .values((
            endpoints::id.eq(Uuid::now_v7()),
            endpoints::url.eq(&endpoint.url),
            endpoints::description.eq(&endpoint.description),
            endpoints::event_types.eq(&endpoint.event_types),
            endpoints::secret.eq(secret),
        ))
        .returning(Endpoint::as_returning())
        .get_result(conn)
        .await
}

pub async fn find_endpoint(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Endpoint>> {
    endpoints::table
        .find(id)
        .select(Endpoint::as_select())
        .first(conn)
        .await
        .optional()
}

/// Endpoints in id order (UUIDv7, so creation order) after `after`.
pub async fn list_endpoints(
    conn: &mut AsyncPgConnection,
    after: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<Endpoint>> {
    let mut query = endpoints::table
        .select(Endpoint::as_select())
        .order(endpoints::id)
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(endpoints::id.gt(after));
    }
    query.load(conn).await
}

pub async fn list_deliveries(
    conn: &mut AsyncPgConnection,
    endpoint_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<Delivery>> {
    let mut query = deliveries::table
        .filter(deliveries::endpoint_id.eq(endpoint_id))
        .select(Delivery::as_select())
        .order(deliveries::id)
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(deliveries::id.gt(after));
    }
    query.load(conn).await
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
                deliveries::status.eq("pending"),
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
    #[diesel(sql_type = Text)]
    pub url: String,
    #[diesel(sql_type = Text)]
    pub secret: String,
}

/// Leases up to `limit` due deliveries by pushing their `next_attempt_at` past `lease`, in one
/// statement. `SKIP LOCKED` keeps concurrent workers off each other's rows; the lease (not a
/// held transaction) keeps them off rows being sent, and hands the rows back if the worker dies.
pub async fn claim_due(
    conn: &mut AsyncPgConnection,
    lease: Duration,
    limit: i64,
) -> QueryResult<Vec<Claimed>> {
    diesel::sql_query(
        "WITH due AS ( \
             SELECT d.id FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id \
             WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND e.enabled \
             ORDER BY d.next_attempt_at LIMIT $2 \
             FOR UPDATE OF d SKIP LOCKED) \
         UPDATE deliveries d SET next_attempt_at = now() + $1 * interval '1 millisecond' \
         FROM due, endpoints e \
         WHERE d.id = due.id AND e.id = d.endpoint_id \
         RETURNING d.id, d.endpoint_id, d.event_id, d.event_type, d.order_id, d.payload, d.attempts, e.url, e.secret",
    )
    .bind::<BigInt, _>(millis(lease))
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Records a successful attempt; false when the row was no longer pending (nothing to announce).
pub async fn mark_delivered(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    attempts: i32,
    status_code: i32,
) -> QueryResult<bool> {
    let updated = diesel::update(
        deliveries::table
            .find(id)
            .filter(deliveries::status.eq("pending")),
    )
    .set((
        deliveries::status.eq("delivered"),
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
    diesel::update(
        deliveries::table
            .find(id)
            .filter(deliveries::status.eq("pending")),
    )
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
    let updated = diesel::update(
        deliveries::table
            .find(id)
            .filter(deliveries::status.eq("pending")),
    )
    .set((
        deliveries::status.eq("failed"),
        deliveries::attempts.eq(attempts),
        deliveries::last_status_code.eq(status_code),
        deliveries::last_error.eq(Some(error)),
    ))
    .execute(conn)
    .await?;
    Ok(updated == 1)
}
