//! Inventory's tables and the only SQL in the service. Query functions take a connection so
//! they compose inside the caller's transaction.

mod image_queries;
mod product_queries;
mod reservation_queries;

pub use image_queries::*;
pub use product_queries::*;
pub use reservation_queries::*;

use bigdecimal::BigDecimal;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

pub(crate) use crate::schema::inventory::{cancelled_orders, products, reservations, stock_adjustments};

/// Where one product line of an order's reservation stands (`reservations.status`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    strum::IntoStaticStr,
    strum::EnumString,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[strum(serialize_all = "snake_case")]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum ReservationStatus {
    /// Held for an order whose payment is open.
    Reserved,
    /// The order was paid: taken from stock.
    Committed,
    /// The order failed or was cancelled before payment: back to available.
    Released,
    /// A paid order was cancelled: restocked.
    Returned,
}

contracts::text_column!(ReservationStatus);
contracts::text_column!(crate::domain::AdjustmentReason);

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
