//! Internal webhook-endpoint routes (the gateway forwards `/api/v1/webhook-endpoints` here).
//! Handlers translate: parse, call the store, map the result.

use crate::domain::{CreateEndpointRequest, NewEndpoint};
use crate::signing;
use crate::store::{self, Delivery, Endpoint};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use platform::db::PgPool;
use platform::problem::{FieldError, Problem};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub fn routes(cfg: &mut web::ServiceConfig, pool: PgPool) {
    cfg.app_data(web::Data::new(pool))
        .route("/webhook-endpoints", web::post().to(create_endpoint))
        .route("/webhook-endpoints", web::get().to(list_endpoints))
        .route("/webhook-endpoints/{id}", web::get().to(get_endpoint))
        .route(
            "/webhook-endpoints/{id}/deliveries",
            web::get().to(list_deliveries),
        );
}

#[derive(Debug, Serialize)]
pub struct EndpointView {
    pub id: Uuid,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    /// Shown once, in the answer to the creation; never listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EndpointView {
    fn new(endpoint: Endpoint, reveal_secret: bool) -> Self {
        Self {
            id: endpoint.id,
            url: endpoint.url,
            event_types: endpoint.event_types,
            description: endpoint.description,
            secret: reveal_secret.then_some(endpoint.secret),
            enabled: endpoint.enabled,
            created_at: endpoint.created_at,
            updated_at: endpoint.updated_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct DeliveryView {
    pub id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub order_id: Option<Uuid>,
    pub status: String,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        Self {
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            order_id: d.order_id,
            status: d.status,
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

fn db_problem(error: impl std::fmt::Display) -> Problem {
    Problem::internal(&error)
}

async fn create_endpoint(
    pool: web::Data<PgPool>,
    body: web::Json<CreateEndpointRequest>,
) -> Result<HttpResponse, Problem> {
    let endpoint = NewEndpoint::try_from(body.into_inner()).map_err(Problem::validation)?;
    let secret = signing::generate_secret();
    let mut conn = pool
        .get()
        .await
        .map_err(|e| Problem::unavailable(e.to_string()))?;
    let created = store::insert_endpoint(&mut conn, &endpoint, &secret)
        .await
        .map_err(db_problem)?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/webhook-endpoints/{}", created.id)))
        .json(EndpointView::new(created, true)))
}

async fn get_endpoint(pool: web::Data<PgPool>, id: web::Path<Uuid>) -> Result<HttpResponse, Problem> {
    let mut conn = pool
        .get()
        .await
        .map_err(|e| Problem::unavailable(e.to_string()))?;
    match store::find_endpoint(&mut conn, id.into_inner())
        .await
        .map_err(db_problem)?
    {
        Some(endpoint) => Ok(HttpResponse::Ok().json(EndpointView::new(endpoint, false))),
        None => Err(Problem::not_found("Webhook endpoint")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<i64>,
    starting_after: Option<Uuid>,
}

impl ListQuery {
    fn limit(&self) -> Result<i64, Problem> {
        let limit = self.limit.unwrap_or(100);
        if !(1..=100).contains(&limit) {
            return Err(Problem::validation(vec![FieldError::new(
                "limit",
                "must be between 1 and 100",
            )]));
        }
        Ok(limit)
    }
}

/// A full page may have a successor; its last id is where the next one starts.
fn next_cursor<T>(items: &[T], limit: i64, id: impl Fn(&T) -> Uuid) -> Option<Uuid> {
    if items.len() as i64 == limit {
        items.last().map(id)
    } else {
        None
    }
}

async fn list_endpoints(
    pool: web::Data<PgPool>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, Problem> {
    let limit = query.limit()?;
    let mut conn = pool
        .get()
        .await
        .map_err(|e| Problem::unavailable(e.to_string()))?;
    let endpoints = store::list_endpoints(&mut conn, query.starting_after, limit)
        .await
        .map_err(db_problem)?;
    let next_cursor = next_cursor(&endpoints, limit, |e| e.id);
    let items: Vec<EndpointView> = endpoints
        .into_iter()
        .map(|e| EndpointView::new(e, false))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items, "next_cursor": next_cursor })))
}

async fn list_deliveries(
    pool: web::Data<PgPool>,
    id: web::Path<Uuid>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, Problem> {
    let limit = query.limit()?;
    let endpoint_id = id.into_inner();
    let mut conn = pool
        .get()
        .await
        .map_err(|e| Problem::unavailable(e.to_string()))?;
    if store::find_endpoint(&mut conn, endpoint_id)
        .await
        .map_err(db_problem)?
        .is_none()
    {
        return Err(Problem::not_found("Webhook endpoint"));
    }
    let deliveries = store::list_deliveries(&mut conn, endpoint_id, query.starting_after, limit)
        .await
        .map_err(db_problem)?;
    let next_cursor = next_cursor(&deliveries, limit, |d| d.id);
    let items: Vec<DeliveryView> = deliveries.into_iter().map(DeliveryView::from).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items, "next_cursor": next_cursor })))
}
