//! The payments table and its queries.

use bigdecimal::BigDecimal;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

diesel::table! {
    payments (id) {
        id -> Uuid,
        order_id -> Uuid,
        amount -> Numeric,
        currency -> Text,
        payment_method -> Text,
        provider -> Text,
        status -> Text,
        failure_code -> Nullable<Text>,
        failure_message -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = payments)]
pub struct Payment {
    pub id: Uuid,
    pub order_id: Uuid,
    pub amount: BigDecimal,
    pub currency: String,
    pub payment_method: String,
    pub provider: String,
    pub status: String,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Insertable)]
#[diesel(table_name = payments)]
pub struct NewPayment<'a> {
    pub id: Uuid,
    pub order_id: Uuid,
    pub amount: &'a BigDecimal,
    pub currency: &'a str,
    pub payment_method: &'a str,
    pub provider: &'a str,
    pub status: &'a str,
    pub failure_code: Option<&'a str>,
    pub failure_message: Option<&'a str>,
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

pub async fn find_by_order(conn: &mut AsyncPgConnection, order_id: Uuid) -> QueryResult<Option<Payment>> {
    payments::table
        .filter(payments::order_id.eq(order_id))
        .select(Payment::as_select())
        .first(conn)
        .await
        .optional()
}
