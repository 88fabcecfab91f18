//! Product images: one row per stored image, its bytes in the object store.

use super::products;
use crate::images::ImageFormat;
use crate::schema::inventory::product_images;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = product_images)]
pub struct ProductImage {
    pub id: Uuid,
    pub product_id: Uuid,
    /// Display order within the product, from 0.
    pub position: i32,
    pub content_type: ImageFormat,
    pub width: i32,
    pub height: i32,
    pub byte_size: i64,
    pub thumbnail_byte_size: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = product_images)]
pub struct NewProductImage {
    pub id: Uuid,
    pub product_id: Uuid,
    pub position: i32,
    pub content_type: ImageFormat,
    pub width: i32,
    pub height: i32,
    pub byte_size: i64,
    pub thumbnail_byte_size: i64,
}

/// The product's images in display order (position, then id: stable).
pub async fn product_images(conn: &mut AsyncPgConnection, product: Uuid) -> QueryResult<Vec<ProductImage>> {
    product_images::table
        .filter(product_images::product_id.eq(product))
        .order((product_images::position, product_images::id))
        .select(ProductImage::as_select())
        .load(conn)
        .await
}

/// The images of several products at once (a product list), each product's in display order.
pub async fn images_of(conn: &mut AsyncPgConnection, products: &[Uuid]) -> QueryResult<Vec<ProductImage>> {
    product_images::table
        .filter(product_images::product_id.eq_any(products))
        .order((product_images::product_id, product_images::position, product_images::id))
        .select(ProductImage::as_select())
        .load(conn)
        .await
}

/// One image of an active product (a deleted product's images are gone or going).
pub async fn find_image(
    conn: &mut AsyncPgConnection,
    product: Uuid,
    image: Uuid,
) -> QueryResult<Option<ProductImage>> {
    product_images::table
        .inner_join(products::table)
        .filter(product_images::id.eq(image))
        .filter(product_images::product_id.eq(product))
        .filter(products::deleted_at.is_null())
        .select(ProductImage::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn insert_image(
    conn: &mut AsyncPgConnection,
    image: &NewProductImage,
) -> QueryResult<ProductImage> {
    diesel::insert_into(product_images::table)
        .values(image)
        .returning(ProductImage::as_returning())
        .get_result(conn)
        .await
}

pub async fn delete_image(
    conn: &mut AsyncPgConnection,
    product: Uuid,
    image: Uuid,
) -> QueryResult<Option<ProductImage>> {
    diesel::delete(
        product_images::table
            .filter(product_images::id.eq(image))
            .filter(product_images::product_id.eq(product)),
    )
    .returning(ProductImage::as_returning())
    .get_result(conn)
    .await
    .optional()
}

pub async fn delete_images_of(conn: &mut AsyncPgConnection, product: Uuid) -> QueryResult<Vec<ProductImage>> {
    diesel::delete(product_images::table.filter(product_images::product_id.eq(product)))
        .returning(ProductImage::as_returning())
        .get_results(conn)
        .await
}

/// Sets one image's position (the unique position is checked at commit).
pub async fn set_position(
    conn: &mut AsyncPgConnection,
    product: Uuid,
    image: Uuid,
    position: i32,
) -> QueryResult<usize> {
    diesel::update(
        product_images::table
            .filter(product_images::id.eq(image))
            .filter(product_images::product_id.eq(product)),
    )
    .set(product_images::position.eq(position))
    .execute(conn)
    .await
}
