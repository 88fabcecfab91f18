//! Public reads; deleted products only for admins who ask for them.

use super::{ProductView, pool_problem};
use crate::rates::{self, http::RatesConfig};
use crate::store::{self, Scope};
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use platform::auth::Admin;
use platform::db::PgPool;
use platform::problem::{FieldError, Problem};
use serde::Deserialize;
use uuid::Uuid;

/// `include_deleted=true` needs the admin role (401 without a token, 403 for a customer).
async fn scope(req: &HttpRequest, include_deleted: Option<bool>) -> Result<Scope, Problem> {
    if include_deleted != Some(true) {
        return Ok(Scope::Active);
    }
    Admin::extract(req).await?;
    Ok(Scope::IncludingDeleted)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GetQuery {
    include_deleted: Option<bool>,
    /// Also show the price converted into this currency (`display_price`).
    currency: Option<String>,
}

pub(super) async fn get_product(
    req: HttpRequest,
    pool: web::Data<PgPool>,
    id: web::Path<Uuid>,
    query: web::Query<GetQuery>,
    rates: web::Data<RatesConfig>,
) -> Result<HttpResponse, Problem> {
    let scope = scope(&req, query.include_deleted).await?;
    let mut conn = pool.get().await.map_err(pool_problem)?;
    match store::find_product(&mut conn, id.into_inner(), scope).await.map_err(|e| Problem::internal(&e))? {
        Some(product) => {
            let images =
                store::product_images(&mut conn, product.id).await.map_err(|e| Problem::internal(&e))?;
            let view = ProductView::from(product).with_images(images);
            let priced =
                rates::http::priced(&mut conn, vec![view], query.currency.as_deref(), &rates).await?;
            Ok(HttpResponse::Ok().json(priced.first()))
        }
        None => Err(Problem::not_found("Product")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    limit: Option<i64>,
    starting_after: Option<Uuid>,
    include_deleted: Option<bool>,
    /// Also show each price converted into this currency (`display_price`).
    currency: Option<String>,
}

pub(super) async fn list_products(
    req: HttpRequest,
    pool: web::Data<PgPool>,
    query: web::Query<ListQuery>,
    rates: web::Data<RatesConfig>,
) -> Result<HttpResponse, Problem> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(Problem::validation(vec![FieldError::new("limit", "must be between 1 and 100")]));
    }
    let scope = scope(&req, query.include_deleted).await?;
    let mut conn = pool.get().await.map_err(pool_problem)?;
    let products = store::list_products(&mut conn, query.starting_after, limit, scope)
        .await
        .map_err(|e| Problem::internal(&e))?;
    let next_cursor = if products.len() as i64 == limit { products.last().map(|p| p.id) } else { None };
    // One query for the images of the whole page.
    let ids: Vec<Uuid> = products.iter().map(|p| p.id).collect();
    let mut images = std::collections::HashMap::<Uuid, Vec<_>>::new();
    for image in store::images_of(&mut conn, &ids).await.map_err(|e| Problem::internal(&e))? {
        images.entry(image.product_id).or_default().push(image);
    }
    let items: Vec<ProductView> = products
        .into_iter()
        .map(|p| {
            let own = images.remove(&p.id).unwrap_or_default();
            ProductView::from(p).with_images(own)
        })
        .collect();
    let items = rates::http::priced(&mut conn, items, query.currency.as_deref(), &rates).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items, "next_cursor": next_cursor })))
}
