//! Products and their stock adjustments.

use super::{Product, StoreError, products, stock_adjustments};
use crate::domain::{NewProduct, ProductChanges, StockAdjustment};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// Which products a read sees: soft-deleted ones only when asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Active,
    IncludingDeleted,
}

pub async fn insert_product(
    conn: &mut AsyncPgConnection,
    product: &NewProduct,
) -> Result<Product, StoreError> {
    diesel::insert_into(products::table)
        .values((
            products::id.eq(Uuid::now_v7()),
            products::sku.eq(&product.sku),
            products::name.eq(&product.name),
            products::description.eq(&product.description),
            products::price.eq(product.price.as_decimal()),
            products::currency.eq(product.currency.as_str()),
            products::on_hand.eq(product.stock),
        ))
        .returning(Product::as_returning())
        .get_result(conn)
        .await
        .map_err(|error| match error {
            diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
                StoreError::SkuTaken(product.sku.clone())
            }
            other => StoreError::Db(other),
        })
}

pub async fn find_product(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    scope: Scope,
) -> QueryResult<Option<Product>> {
    let mut query = products::table.find(id).select(Product::as_select()).into_boxed();
    if scope == Scope::Active {
        query = query.filter(products::deleted_at.is_null());
    }
    query.first(conn).await.optional()
}

/// The product, locked until the end of the transaction (deleted ones included: the caller
/// decides what a deleted product means for its change).
pub async fn lock_product(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Product>> {
    products::table.find(id).select(Product::as_select()).for_update().first(conn).await.optional()
}

/// Products in id order (UUIDv7, so creation order) after `after`.
pub async fn list_products(
    conn: &mut AsyncPgConnection,
    after: Option<Uuid>,
    limit: i64,
    scope: Scope,
) -> QueryResult<Vec<Product>> {
    let mut query =
        products::table.select(Product::as_select()).order(products::id).limit(limit).into_boxed();
    if let Some(after) = after {
        query = query.filter(products::id.gt(after));
    }
    if scope == Scope::Active {
        query = query.filter(products::deleted_at.is_null());
    }
    query.load(conn).await
}

#[derive(AsChangeset)]
#[diesel(table_name = products)]
struct ProductChangeset<'a> {
    name: Option<&'a str>,
    /// `Some(None)` clears the description.
    description: Option<Option<&'a str>>,
    price: Option<&'a bigdecimal::BigDecimal>,
    currency: Option<&'a str>,
}

/// Applies `changes` to an active product and bumps its version; `None` when there is no such
/// active product.
pub async fn update_product(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: &ProductChanges,
) -> QueryResult<Option<Product>> {
    let changeset = ProductChangeset {
        name: changes.name.as_deref(),
        description: changes.description.as_ref().map(Option::as_deref),
        price: changes.price.as_ref().map(|p| p.as_decimal()),
        currency: changes.currency.as_ref().map(|c| c.as_str()),
    };
    diesel::update(products::table.find(id).filter(products::deleted_at.is_null()))
        .set((
            changeset,
            products::version.eq(products::version + 1),
            products::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Product::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Sets the stock on hand (the caller checked it against `reserved` under a row lock; the
/// table's CHECK is the backstop) and bumps the version.
pub async fn set_on_hand(conn: &mut AsyncPgConnection, id: Uuid, on_hand: i64) -> QueryResult<Product> {
    diesel::update(products::table.find(id))
        .set((
            products::on_hand.eq(on_hand),
            products::version.eq(products::version + 1),
            products::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Product::as_returning())
        .get_result(conn)
        .await
}

pub async fn record_adjustment(
    conn: &mut AsyncPgConnection,
    product_id: Uuid,
    adjustment: &StockAdjustment,
    actor: Uuid,
) -> QueryResult<()> {
    diesel::insert_into(stock_adjustments::table)
        .values((
            stock_adjustments::id.eq(Uuid::now_v7()),
            stock_adjustments::product_id.eq(product_id),
            stock_adjustments::delta.eq(adjustment.delta),
            stock_adjustments::reason.eq(adjustment.reason),
            stock_adjustments::note.eq(adjustment.note.as_deref()),
            stock_adjustments::actor.eq(actor),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks the product deleted and bumps its version.
pub async fn soft_delete(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Product> {
    diesel::update(products::table.find(id))
        .set((
            products::deleted_at.eq(diesel::dsl::now),
            products::version.eq(products::version + 1),
            products::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Product::as_returning())
        .get_result(conn)
        .await
}
