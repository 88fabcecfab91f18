//! What happened to payments: transitions, provider calls, provider callbacks, refunds, and
//! remembered order cancellations.

use bigdecimal::BigDecimal;
use chrono::{DateTime, Utc};
use contracts::{OrderId, PaymentId};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::domain::PaymentStatus;
use crate::provider::IntentStatus;
pub(crate) use crate::schema::payment::{
    order_cancellations, payment_attempts, payment_provider_events, payment_transitions, refunds,
};

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = payment_transitions)]
pub struct Transition {
    #[serde(rename = "from")]
    pub from_status: Option<PaymentStatus>,
    #[serde(rename = "to")]
    pub to_status: PaymentStatus,
    pub cause: String,
    pub at: DateTime<Utc>,
}

contracts::text_enum! {
    /// What one provider call came to: the intent's state it answered, or our own note of it.
    pub enum AttemptOutcome {
        Created,
        RequiresConfirmation,
        Processing,
        RequiresAction,
        Succeeded,
        Failed,
        Canceled,
        Refunded,
        /// The call itself failed; the attempt's `error` says how.
        Error,
    }
}

impl From<&IntentStatus> for AttemptOutcome {
    fn from(status: &IntentStatus) -> Self {
        match status {
            IntentStatus::RequiresConfirmation => Self::RequiresConfirmation,
            IntentStatus::Processing => Self::Processing,
            IntentStatus::RequiresAction => Self::RequiresAction,
            IntentStatus::Succeeded => Self::Succeeded,
            IntentStatus::Failed { .. } => Self::Failed,
            IntentStatus::Canceled => Self::Canceled,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = payment_attempts)]
pub struct Attempt {
    pub operation: String,
    pub idempotency_key: Option<String>,
    pub outcome: AttemptOutcome,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = payment_provider_events)]
pub struct ProviderEvent {
    pub provider_event_id: String,
    pub event_type: String,
    pub outcome: String,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = refunds)]
pub struct Refund {
    pub id: Uuid,
    pub amount: BigDecimal,
    pub provider_ref: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
}

pub async fn transition(
    conn: &mut AsyncPgConnection,
    payment_id: PaymentId,
    from: Option<PaymentStatus>,
    to: PaymentStatus,
    cause: &str,
) -> QueryResult<()> {
    diesel::insert_into(payment_transitions::table)
        .values((
            payment_transitions::payment_id.eq(payment_id),
            payment_transitions::from_status.eq(from),
            payment_transitions::to_status.eq(to),
            payment_transitions::cause.eq(cause),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn attempt(
    conn: &mut AsyncPgConnection,
    payment_id: PaymentId,
    operation: &str,
    key: Option<&str>,
    outcome: AttemptOutcome,
    error: Option<&str>,
) -> QueryResult<()> {
    diesel::insert_into(payment_attempts::table)
        .values((
            payment_attempts::payment_id.eq(payment_id),
            payment_attempts::operation.eq(operation),
            payment_attempts::idempotency_key.eq(key),
            payment_attempts::outcome.eq(outcome),
            payment_attempts::error.eq(error),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Records a provider callback once; false when its id was seen before (a duplicate).
pub async fn provider_event(
    conn: &mut AsyncPgConnection,
    provider: &str,
    event_id: &str,
    event_type: &str,
) -> QueryResult<bool> {
    let inserted = diesel::insert_into(payment_provider_events::table)
        .values((
            payment_provider_events::provider.eq(provider),
            payment_provider_events::provider_event_id.eq(event_id),
            payment_provider_events::event_type.eq(event_type),
            payment_provider_events::outcome.eq("received"),
        ))
        .on_conflict((payment_provider_events::provider, payment_provider_events::provider_event_id))
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(inserted == 1)
}

pub async fn provider_event_outcome(
    conn: &mut AsyncPgConnection,
    provider: &str,
    event_id: &str,
    payment_id: Option<PaymentId>,
    outcome: &str,
) -> QueryResult<()> {
    diesel::update(
        payment_provider_events::table.filter(
            payment_provider_events::provider
                .eq(provider)
                .and(payment_provider_events::provider_event_id.eq(event_id)),
        ),
    )
    .set((payment_provider_events::payment_id.eq(payment_id), payment_provider_events::outcome.eq(outcome)))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn insert_refund(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    payment_id: PaymentId,
    amount: &BigDecimal,
    provider_ref: &str,
    reason: &str,
) -> QueryResult<()> {
    diesel::insert_into(refunds::table)
        .values((
            refunds::id.eq(id),
            refunds::payment_id.eq(payment_id),
            refunds::amount.eq(amount),
            refunds::provider_ref.eq(provider_ref),
            refunds::reason.eq(reason),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Remembers that the order was cancelled; false when it already was.
pub async fn record_cancellation(
    conn: &mut AsyncPgConnection,
    order_id: OrderId,
    event_id: Uuid,
) -> QueryResult<bool> {
    let inserted = diesel::insert_into(order_cancellations::table)
        .values((order_cancellations::order_id.eq(order_id), order_cancellations::event_id.eq(event_id)))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(inserted == 1)
}

pub async fn is_cancelled(conn: &mut AsyncPgConnection, order_id: OrderId) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(order_cancellations::table.find(order_id))).get_result(conn).await
}

pub async fn history_of(conn: &mut AsyncPgConnection, payment_id: PaymentId) -> QueryResult<Vec<Transition>> {
    payment_transitions::table
        .filter(payment_transitions::payment_id.eq(payment_id))
        .order(payment_transitions::id)
        .select(Transition::as_select())
        .load(conn)
        .await
}

pub async fn attempts_of(conn: &mut AsyncPgConnection, payment_id: PaymentId) -> QueryResult<Vec<Attempt>> {
    payment_attempts::table
        .filter(payment_attempts::payment_id.eq(payment_id))
        .order(payment_attempts::id)
        .select(Attempt::as_select())
        .load(conn)
        .await
}

pub async fn events_of(
    conn: &mut AsyncPgConnection,
    payment_id: PaymentId,
) -> QueryResult<Vec<ProviderEvent>> {
    payment_provider_events::table
        .filter(payment_provider_events::payment_id.eq(payment_id))
        .order(payment_provider_events::id)
        .select(ProviderEvent::as_select())
        .load(conn)
        .await
}

pub async fn refunds_of(conn: &mut AsyncPgConnection, payment_id: PaymentId) -> QueryResult<Vec<Refund>> {
    refunds::table
        .filter(refunds::payment_id.eq(payment_id))
        .order(refunds::created_at)
        .select(Refund::as_select())
        .load(conn)
        .await
}
