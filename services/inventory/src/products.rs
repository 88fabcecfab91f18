//! Product use cases: each change runs in one transaction that also enqueues `product.upserted`
//! (with the new version), so the gateway's catalog follows every price, stock and activity
//! change. Callable without HTTP.

use crate::OUTBOX;
use crate::domain::{NewProduct, ProductChanges, StockAdjustment, StockRefusal};
use crate::store::{self, Product, StoreError};
use contracts::events::ProductUpserted;
use contracts::{Amount, Currency, Event};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

/// What a product change can come to; every variant but `Db` is the caller's to act on.
#[derive(Debug, thiserror::Error)]
pub enum ProductError {
    #[error("no such product")]
    NotFound,
    #[error("a product with SKU `{0}` already exists")]
    SkuTaken(String),
    #[error("stock cannot go below the {reserved} units reserved (on hand {on_hand})")]
    InsufficientStock { on_hand: i64, reserved: i64 },
    #[error("stock would exceed the maximum (on hand {on_hand})")]
    StockLimit { on_hand: i64 },
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

impl From<StoreError> for ProductError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::SkuTaken(sku) => Self::SkuTaken(sku),
            StoreError::Db(error) => Self::Db(error),
        }
    }
}

/// The catalog event for the product as it now is.
pub fn upserted(product: &Product) -> Event {
    Event::ProductUpserted(ProductUpserted {
        product_id: product.id,
        sku: product.sku.clone(),
        name: product.name.clone(),
        price: Amount::from_db(product.price.clone()),
        currency: Currency::from_db(product.currency.clone()),
        available: product.available(),
        active: product.is_active(),
        version: product.version,
    })
}

pub async fn create(conn: &mut AsyncPgConnection, product: &NewProduct) -> Result<Product, ProductError> {
    conn.transaction(async |conn: &mut AsyncPgConnection| {
        let created = store::insert_product(conn, product).await?;
        OUTBOX.enqueue(conn, &upserted(&created)).await?;
        Ok(created)
    })
    .await
}

#[tracing::instrument(skip_all, fields(product_id = %id))]
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: &ProductChanges,
) -> Result<Product, ProductError> {
    conn.transaction(async |conn: &mut AsyncPgConnection| {
        let updated = store::update_product(conn, id, changes).await?.ok_or(ProductError::NotFound)?;
        OUTBOX.enqueue(conn, &upserted(&updated)).await?;
        Ok(updated)
    })
    .await
}

/// Applies and records a manual stock change by `actor`. The row is locked while the rule is
/// checked, so a concurrent reservation cannot slip between the check and the write.
#[tracing::instrument(skip_all, fields(product_id = %id, delta = adjustment.delta))]
pub async fn adjust_stock(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    adjustment: &StockAdjustment,
    actor: Uuid,
) -> Result<Product, ProductError> {
    conn.transaction(async |conn: &mut AsyncPgConnection| {
        let product =
            store::lock_product(conn, id).await?.filter(Product::is_active).ok_or(ProductError::NotFound)?;
        let on_hand =
            adjustment.apply(product.on_hand, product.reserved).map_err(|refusal| match refusal {
                StockRefusal::BelowReserved => {
                    ProductError::InsufficientStock { on_hand: product.on_hand, reserved: product.reserved }
                }
                StockRefusal::AboveMaximum => ProductError::StockLimit { on_hand: product.on_hand },
            })?;
        let updated = store::set_on_hand(conn, id, on_hand).await?;
        store::record_adjustment(conn, id, adjustment, actor).await?;
        OUTBOX.enqueue(conn, &upserted(&updated)).await?;
        Ok(updated)
    })
    .await
}

/// Soft-deletes the product: hidden, no longer reservable, its SKU still taken; reservations
/// already made settle as usual. Deleting a deleted product changes nothing (a retried DELETE
/// succeeds).
#[tracing::instrument(skip_all, fields(product_id = %id))]
pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> Result<(), ProductError> {
    conn.transaction(async |conn: &mut AsyncPgConnection| {
        let product = store::lock_product(conn, id).await?.ok_or(ProductError::NotFound)?;
        if product.is_active() {
            let deleted = store::soft_delete(conn, id).await?;
            OUTBOX.enqueue(conn, &upserted(&deleted)).await?;
        }
        Ok(())
    })
    .await
}
