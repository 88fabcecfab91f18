//! Public reads; deleted products only for admins who ask for them.

use super::{ProductView, pool_problem};
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
}

pub(super) async fn get_product(
    req: HttpRequest,
    pool: web::Data<PgPool>,
    id: web::Path<Uuid>,
    query: web::Query<GetQuery>,
) -> Result<HttpResponse, Problem> {
    let scope = scope(&req, query.include_deleted).await?;
    let mut conn = pool.get().await.map_err(pool_problem)?;
    match store::find_product(&mut conn, id.into_inner(), scope).await.map_err(|e| Problem::internal(&e))? {
        Some(product) => Ok(HttpResponse::Ok().json(ProductView::from(product))),
        None => Err(Problem::not_found("Product")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    limit: Option<i64>,
    starting_after: Option<Uuid>,
    include_deleted: Option<bool>,
}

pub(super) async fn list_products(
    req: HttpRequest,
    pool: web::Data<PgPool>,
    query: web::Query<ListQuery>,
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
    let items: Vec<ProductView> = products.into_iter().map(ProductView::from).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items, "next_cursor": next_cursor })))
}
