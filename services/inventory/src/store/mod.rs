//! Inventory's tables and the only SQL in the service. Query functions take a connection so
//! they compose inside the caller's transaction.

mod product_queries;
mod reservation_queries;

pub use product_queries::*;
pub use reservation_queries::*;

use bigdecimal::BigDecimal;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

diesel::table! {
    products (id) {
        id -> Uuid,
        sku -> Text,
        name -> Text,
        description -> Nullable<Text>,
        price -> Numeric,
        currency -> Text,
        on_hand -> BigInt,
        reserved -> BigInt,
        version -> BigInt,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    reservations (order_id, product_id) {
        order_id -> Uuid,
        product_id -> Uuid,
        quantity -> BigInt,
        status -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    cancelled_orders (order_id) {
        order_id -> Uuid,
        cancelled_at -> Timestamptz,
    }
}

diesel::table! {
    stock_adjustments (id) {
        id -> Uuid,
        product_id -> Uuid,
        delta -> BigInt,
        reason -> Text,
        note -> Nullable<Text>,
        actor -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(reservations -> products (product_id));
diesel::joinable!(stock_adjustments -> products (product_id));
diesel::allow_tables_to_appear_in_same_query!(products, reservations, stock_adjustments);

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = products)]
pub struct Product {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    pub price: BigDecimal,
    pub currency: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set by a soft delete: hidden, not reservable, SKU still taken.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Product {
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }

    pub fn is_active(&self) -> bool {
        self.deleted_at.is_none()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a product with SKU `{0}` already exists")]
    SkuTaken(String),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}
