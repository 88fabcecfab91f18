//! The payment service's tables and the only SQL in it. Query functions take a connection so
//! they compose inside the caller's transaction.

pub mod log;
pub mod sim;

use crate::domain::PaymentStatus;
use bigdecimal::BigDecimal;
use chrono::{DateTime, Utc};
use contracts::{OrderId, PaymentId};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

pub(crate) use crate::schema::payment::payments;

impl Payment {
    /// What the domain decides this payment's next job from.
    pub fn standing(&self) -> crate::domain::Standing {
        crate::domain::Standing {
            status: self.status,
            confirmed: self.confirmed,
            cancel_requested: self.cancel_requested,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, QueryableByName, serde::Serialize)]
#[diesel(table_name = payments)]
pub struct Payment {
    pub id: PaymentId,
    pub order_id: OrderId,
    pub amount: BigDecimal,
    pub currency: String,
    pub payment_method: String,
    pub provider: String,
    pub status: PaymentStatus,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub provider_ref: Option<String>,
    pub attempt: i32,
    pub confirmed: bool,
    pub retries: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub decline_code: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub refunded_amount: BigDecimal,
    pub cancel_requested: bool,
    /// The trace of the payment request, continued by the worker.
    #[serde(skip)]
    pub traceparent: Option<String>,
    /// The account that placed the order; `None` for a guest order (only admins see those here).
    pub customer_id: Option<Uuid>,
}

impl Payment {
    /// The provider idempotency key of the current attempt.
    pub fn idempotency_key(&self) -> String {
        format!("pay_{}_{}", self.id, self.attempt)
    }
}

#[derive(Insertable)]
#[diesel(table_name = payments)]
pub struct NewPayment<'a> {
    pub id: PaymentId,
    pub order_id: OrderId,
    pub amount: &'a BigDecimal,
    pub currency: &'a str,
    pub payment_method: &'a str,
    pub provider: &'a str,
    pub status: PaymentStatus,
    pub traceparent: Option<String>,
    pub customer_id: Option<Uuid>,
}

/// The named changes to a payment row besides its status.
pub enum Change<'a> {
    ProviderRef(&'a str),
    Confirmed,
    Failure {
        code: &'a str,
        decline_code: Option<&'a str>,
        message: &'a str,
    },
    /// The payment must be decided within `millis` from now, or sooner if an earlier deadline
    /// already runs: a repeated re-check never extends it, and waiting on the customer shortens
    /// a longer wait on the provider.
    ExpiresIn {
        millis: i64,
    },
    CancelRequested,
    Refunded(&'a BigDecimal),
    /// Look at the row again after `millis` (0: now), the retry count and error kept.
    Schedule {
        millis: i64,
        retries: i32,
        error: Option<&'a str>,
    },
    Idle,
}

/// Inserts the payment unless the order already has one; false when it did.
pub async fn insert(conn: &mut AsyncPgConnection, payment: &NewPayment<'_>) -> QueryResult<bool> {
    let inserted = diesel::insert_into(payments::table)
        .values(payment)
        .on_conflict(payments::order_id)
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(inserted == 1)
}

pub async fn find_by_order(conn: &mut AsyncPgConnection, order_id: OrderId) -> QueryResult<Option<Payment>> {
    payments::table
        .filter(payments::order_id.eq(order_id))
        .select(Payment::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn find(conn: &mut AsyncPgConnection, id: PaymentId) -> QueryResult<Option<Payment>> {
    payments::table.find(id).select(Payment::as_select()).first(conn).await.optional()
}

/// The row, locked until the transaction ends.
pub async fn lock(conn: &mut AsyncPgConnection, id: PaymentId) -> QueryResult<Option<Payment>> {
    payments::table.find(id).select(Payment::as_select()).for_update().first(conn).await.optional()
}

pub async fn lock_by_order(conn: &mut AsyncPgConnection, order_id: OrderId) -> QueryResult<Option<Payment>> {
    payments::table
        .filter(payments::order_id.eq(order_id))
        .select(Payment::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

pub async fn lock_by_provider_ref(
    conn: &mut AsyncPgConnection,
    provider: &str,
    provider_ref: &str,
) -> QueryResult<Option<Payment>> {
    payments::table
        .filter(payments::provider.eq(provider).and(payments::provider_ref.eq(provider_ref)))
        .select(Payment::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

pub async fn set_status(
    conn: &mut AsyncPgConnection,
    id: PaymentId,
    status: PaymentStatus,
) -> QueryResult<()> {
    diesel::update(payments::table.find(id))
        .set((payments::status.eq(status), payments::updated_at.eq(diesel::dsl::now)))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn change(conn: &mut AsyncPgConnection, id: PaymentId, change: Change<'_>) -> QueryResult<()> {
    let row = payments::table.find(id);
    let now = diesel::dsl::now;
    match change {
        Change::ProviderRef(reference) => {
            diesel::update(row).set(payments::provider_ref.eq(reference)).execute(conn).await?
        }
        Change::Confirmed => diesel::update(row).set(payments::confirmed.eq(true)).execute(conn).await?,
        Change::Failure { code, decline_code, message } => {
            diesel::update(row)
                .set((
                    payments::failure_code.eq(code),
                    payments::decline_code.eq(decline_code),
                    payments::failure_message.eq(message),
                ))
                .execute(conn)
                .await?
        }
        Change::ExpiresIn { millis } => {
            diesel::sql_query(
                // LEAST ignores NULL: a payment without a deadline gets this one.
                "UPDATE payments SET expires_at = LEAST(expires_at, now() + make_interval(secs => $2::double precision / 1000)) WHERE id = $1",
            )
            .bind::<SqlUuid, _>(id)
            .bind::<BigInt, _>(millis)
            .execute(conn)
            .await?
        }
        Change::CancelRequested => {
            diesel::update(row)
                .set((payments::cancel_requested.eq(true), payments::next_attempt_at.eq(now)))
                .execute(conn)
                .await?
        }
        Change::Refunded(amount) => {
            diesel::update(row).set(payments::refunded_amount.eq(amount)).execute(conn).await?
        }
        Change::Schedule { millis, retries, error } => {
            diesel::sql_query(
                "UPDATE payments SET retries = $2, last_error = $3, \
                 next_attempt_at = now() + make_interval(secs => $4::double precision / 1000) WHERE id = $1",
            )
            .bind::<SqlUuid, _>(id)
            .bind::<diesel::sql_types::Integer, _>(retries)
            .bind::<diesel::sql_types::Nullable<Text>, _>(error)
            .bind::<BigInt, _>(millis)
            .execute(conn)
            .await?
        }
        Change::Idle => {
            diesel::update(row)
                .set((payments::next_attempt_at.eq(None::<DateTime<Utc>>), payments::retries.eq(0)))
                .execute(conn)
                .await?
        }
    };
    Ok(())
}

/// Leases up to `limit` due rows: `SKIP LOCKED` lets replicas claim side by side, and the
/// lease (`next_attempt_at` pushed ahead) hands a crashed worker's rows to another later.
pub async fn claim_due(conn: &mut AsyncPgConnection, lease_ms: i64, limit: i64) -> QueryResult<Vec<Payment>> {
    diesel::sql_query(
        "UPDATE payments SET next_attempt_at = now() + make_interval(secs => $1::double precision / 1000) \
         WHERE id IN (SELECT id FROM payments WHERE next_attempt_at <= now() \
                      ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
         RETURNING *",
    )
    .bind::<BigInt, _>(lease_ms)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}

/// Open payments whose grace period is over.
pub async fn expired_open(conn: &mut AsyncPgConnection, limit: i64) -> QueryResult<Vec<Payment>> {
    payments::table
        .filter(payments::status.eq_any(PaymentStatus::OPEN))
        .filter(payments::expires_at.le(diesel::dsl::now))
        .order(payments::expires_at)
        .limit(limit)
        .select(Payment::as_select())
        .load(conn)
        .await
}
