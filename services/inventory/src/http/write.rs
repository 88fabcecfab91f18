//! Admin-only writes: create, partial update, stock adjustment, soft delete. `Admin` is the
//! first extractor, so an unauthenticated call is a 401 whatever else is wrong with it.

use super::{ProductView, pool_problem};
use crate::domain::{
    CreateProductRequest, NewProduct, ProductChanges, StockAdjustment, StockAdjustmentRequest,
    UpdateProductRequest,
};
use crate::products;
use actix_web::{HttpResponse, web};
use platform::auth::Admin;
use platform::db::PgPool;
use platform::problem::Problem;
use uuid::Uuid;

pub(super) async fn create_product(
    _admin: Admin,
    pool: web::Data<PgPool>,
    body: web::Json<CreateProductRequest>,
) -> Result<HttpResponse, Problem> {
    let product = NewProduct::try_from(body.into_inner()).map_err(Problem::validation)?;
    let mut conn = pool.get().await.map_err(pool_problem)?;
    let created = products::create(&mut conn, &product).await?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/products/{}", created.id)))
        .json(ProductView::from(created)))
}

pub(super) async fn update_product(
    _admin: Admin,
    pool: web::Data<PgPool>,
    id: web::Path<Uuid>,
    body: web::Json<UpdateProductRequest>,
) -> Result<HttpResponse, Problem> {
    let changes = ProductChanges::try_from(body.into_inner()).map_err(Problem::validation)?;
    let mut conn = pool.get().await.map_err(pool_problem)?;
    let updated = products::update(&mut conn, id.into_inner(), &changes).await?;
    let images =
        crate::store::product_images(&mut conn, updated.id).await.map_err(|e| Problem::internal(&e))?;
    Ok(HttpResponse::Ok().json(ProductView::from(updated).with_images(images)))
}

pub(super) async fn adjust_stock(
    Admin(admin): Admin,
    pool: web::Data<PgPool>,
    id: web::Path<Uuid>,
    body: web::Json<StockAdjustmentRequest>,
) -> Result<HttpResponse, Problem> {
    let adjustment = StockAdjustment::try_from(body.into_inner()).map_err(Problem::validation)?;
    let mut conn = pool.get().await.map_err(pool_problem)?;
    let updated = products::adjust_stock(&mut conn, id.into_inner(), &adjustment, admin.sub).await?;
    let images =
        crate::store::product_images(&mut conn, updated.id).await.map_err(|e| Problem::internal(&e))?;
    Ok(HttpResponse::Ok().json(ProductView::from(updated).with_images(images)))
}

/// The product's images go with it (`images::purge`); a retried DELETE finishes a purge that
/// was cut short.
pub(super) async fn delete_product(
    _admin: Admin,
    pool: web::Data<PgPool>,
    images: web::Data<crate::images::Images>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let mut conn = pool.get().await.map_err(pool_problem)?;
    products::delete(&mut conn, id).await?;
    crate::images::purge(&mut conn, &images, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
