use crate::domain::new_order::{CreateOrderRequest, Limits};
use crate::orders::{self, OrderError};
use crate::settings::Settings;
use crate::store::OrderFilter;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use platform::db::PgPool;
use platform::problem::{FieldError, Problem};
use serde::Deserialize;
use uuid::Uuid;

pub fn limits(settings: &Settings) -> Limits {
    Limits {
        max_items: settings.max_items_per_order,
        max_quantity: settings.max_quantity_per_line,
    }
}

fn problem(error: OrderError) -> Problem {
    match error {
        OrderError::Invalid(errors) => Problem::validation(errors),
        OrderError::Db(error) => Problem::internal(&error),
    }
}

async fn connection(pool: &PgPool) -> Result<platform::db::PooledConnection, Problem> {
    pool.get().await.map_err(|e| Problem::unavailable(e.to_string()))
}

pub async fn create(
    pool: web::Data<PgPool>,
    limits: web::Data<Limits>,
    body: web::Json<CreateOrderRequest>,
) -> Result<HttpResponse, Problem> {
    let mut conn = connection(&pool).await?;
    let order = orders::place(&mut conn, body.into_inner(), **limits)
        .await
        .map_err(problem)?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/orders/{}", order.id)))
        .json(order))
}

pub async fn get(pool: web::Data<PgPool>, id: web::Path<Uuid>) -> Result<HttpResponse, Problem> {
    let mut conn = connection(&pool).await?;
    match orders::find(&mut conn, id.into_inner()).await.map_err(problem)? {
        Some(order) => Ok(HttpResponse::Ok().json(order)),
        None => Err(Problem::not_found("Order")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<i64>,
    starting_after: Option<Uuid>,
    status: Option<String>,
    created_after: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
}

pub async fn list(pool: web::Data<PgPool>, query: web::Query<ListQuery>) -> Result<HttpResponse, Problem> {
    let query = query.into_inner();
    let limit = query.limit.unwrap_or(20);
    let mut errors = Vec::new();
    if !(1..=100).contains(&limit) {
        errors.push(FieldError::new("limit", "must be between 1 and 100"));
    }
    let status = query
        .status
        .as_deref()
        .map(orders::parse_status)
        .transpose()
        .map_err(|e| errors.push(e))
        .ok()
        .flatten();
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    let filter = OrderFilter {
        status,
        starting_after: query.starting_after,
        created_after: query.created_after,
        created_before: query.created_before,
    };
    let mut conn = connection(&pool).await?;
    let page = orders::list(&mut conn, &filter, limit).await.map_err(problem)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": page.items, "next_cursor": page.next_cursor })))
}
