//! The simulated provider's own tables: its state lives apart from the payments, committed by
//! its own transactions, exactly as a remote provider's would.

use bigdecimal::BigDecimal;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

pub(crate) use crate::schema::payment::{sim_intents, sim_refunds};

contracts::text_enum! {
    #[derive(strum::Display)]
    /// Where a simulated intent stands (Stripe's names for the same states).
    pub enum SimStatus {
        RequiresConfirmation,
        RequiresAction,
        Succeeded,
        Failed,
        Canceled,
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sim_intents)]
pub struct SimIntent {
    pub id: String,
    pub payment_method: String,
    pub status: SimStatus,
    pub failure_code: Option<String>,
    pub decline_code: Option<String>,
    pub confirm_calls: i32,
}

/// Creates the intent for `key` unless it exists; answers the intent of that key either way.
pub async fn create(
    conn: &mut AsyncPgConnection,
    key: &str,
    payment_method: &str,
    amount: &BigDecimal,
    currency: &str,
) -> QueryResult<SimIntent> {
    diesel::insert_into(sim_intents::table)
        .values((
            sim_intents::id.eq(format!("pi_sim_{}", uuid::Uuid::now_v7().simple())),
            sim_intents::idempotency_key.eq(key),
            sim_intents::payment_method.eq(payment_method),
            sim_intents::amount.eq(amount),
            sim_intents::currency.eq(currency),
            sim_intents::status.eq(SimStatus::RequiresConfirmation),
        ))
        .on_conflict(sim_intents::idempotency_key)
        .do_nothing()
        .execute(conn)
        .await?;
    sim_intents::table
        .filter(sim_intents::idempotency_key.eq(key))
        .select(SimIntent::as_select())
        .first(conn)
        .await
}

pub async fn lock(conn: &mut AsyncPgConnection, id: &str) -> QueryResult<Option<SimIntent>> {
    sim_intents::table.find(id).select(SimIntent::as_select()).for_update().first(conn).await.optional()
}

pub async fn set_status(
    conn: &mut AsyncPgConnection,
    id: &str,
    status: SimStatus,
    failure: Option<(&str, &str)>,
) -> QueryResult<()> {
    diesel::update(sim_intents::table.find(id))
        .set((
            sim_intents::status.eq(status),
            sim_intents::failure_code.eq(failure.map(|(code, _)| code)),
            sim_intents::decline_code.eq(failure.map(|(_, decline)| decline)),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn count_confirm_call(conn: &mut AsyncPgConnection, id: &str) -> QueryResult<i32> {
    diesel::update(sim_intents::table.find(id))
        .set(sim_intents::confirm_calls.eq(sim_intents::confirm_calls + 1))
        .returning(sim_intents::confirm_calls)
        .get_result(conn)
        .await
}

/// Refunds once per key; answers the refund id of that key.
pub async fn refund(
    conn: &mut AsyncPgConnection,
    key: &str,
    intent_id: &str,
    amount: &BigDecimal,
) -> QueryResult<String> {
    diesel::insert_into(sim_refunds::table)
        .values((
            sim_refunds::id.eq(format!("re_sim_{}", uuid::Uuid::now_v7().simple())),
            sim_refunds::idempotency_key.eq(key),
            sim_refunds::intent_id.eq(intent_id),
            sim_refunds::amount.eq(amount),
        ))
        .on_conflict(sim_refunds::idempotency_key)
        .do_nothing()
        .execute(conn)
        .await?;
    sim_refunds::table.filter(sim_refunds::idempotency_key.eq(key)).select(sim_refunds::id).first(conn).await
}
