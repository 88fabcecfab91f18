//! The delivery log and recovery: list an endpoint's deliveries with their attempts, look at
//! one, resend one, recover every failed one since a time.

use super::{AppState, DeliveryView, connection, db_problem, next_cursor, page_limit};
use crate::domain::DeliveryStatus;
use crate::store::{self, DeliveryFilter};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use platform::problem::Problem;
use serde::Deserialize;
use uuid::Uuid;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    limit: Option<i64>,
    starting_after: Option<Uuid>,
    event_id: Option<Uuid>,
    status: Option<DeliveryStatus>,
}

async fn endpoint_exists(conn: &mut diesel_async::AsyncPgConnection, id: Uuid) -> Result<(), Problem> {
    match store::find_endpoint(conn, id).await.map_err(db_problem)? {
        Some(_) => Ok(()),
        None => Err(Problem::not_found("Webhook endpoint")),
    }
}

pub async fn list(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: web::Query<DeliveriesQuery>,
) -> Result<HttpResponse, Problem> {
    let limit = page_limit(query.limit)?;
    let endpoint_id = id.into_inner();
    let mut conn = connection(&state).await?;
    endpoint_exists(&mut conn, endpoint_id).await?;
    let filter =
        DeliveryFilter { event_id: query.event_id, status: query.status, after: query.starting_after };
    let deliveries =
        store::list_deliveries(&mut conn, endpoint_id, &filter, limit).await.map_err(db_problem)?;
    let ids: Vec<Uuid> = deliveries.iter().map(|d| d.id).collect();
    let mut attempts = store::attempts_of(&mut conn, &ids).await.map_err(db_problem)?;
    let next_cursor = next_cursor(&deliveries, limit, |d| d.id);
    let items: Vec<DeliveryView> =
        deliveries.into_iter().map(|d| DeliveryView::new(d, &mut attempts)).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items, "next_cursor": next_cursor })))
}

async fn view(
    conn: &mut diesel_async::AsyncPgConnection,
    delivery: store::Delivery,
) -> Result<DeliveryView, Problem> {
    let mut attempts = store::attempts_of(conn, &[delivery.id]).await.map_err(db_problem)?;
    Ok(DeliveryView::new(delivery, &mut attempts))
}

pub async fn get(state: web::Data<AppState>, id: web::Path<Uuid>) -> Result<HttpResponse, Problem> {
    let mut conn = connection(&state).await?;
    match store::find_delivery(&mut conn, id.into_inner()).await.map_err(db_problem)? {
        Some(delivery) => Ok(HttpResponse::Ok().json(view(&mut conn, delivery).await?)),
        None => Err(Problem::not_found("Webhook delivery")),
    }
}

/// A fresh attempt now, whether the delivery is pending, delivered or failed (with a fresh
/// retry schedule should it fail). 202: the attempt itself happens in the worker.
pub async fn resend(state: web::Data<AppState>, id: web::Path<Uuid>) -> Result<HttpResponse, Problem> {
    let mut conn = connection(&state).await?;
    match store::resend(&mut conn, id.into_inner()).await.map_err(db_problem)? {
        Some(delivery) => {
            state.wake.notify_one();
            Ok(HttpResponse::Accepted().json(view(&mut conn, delivery).await?))
        }
        None => Err(Problem::not_found("Webhook delivery")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoverRequest {
    /// RFC 3339; failed deliveries created at or after it are sent again.
    since: DateTime<Utc>,
}

pub async fn recover(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<RecoverRequest>,
) -> Result<HttpResponse, Problem> {
    let endpoint_id = id.into_inner();
    let mut conn = connection(&state).await?;
    endpoint_exists(&mut conn, endpoint_id).await?;
    let recovered = store::recover(&mut conn, endpoint_id, body.since).await.map_err(db_problem)?;
    if recovered > 0 {
        state.wake.notify_one();
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "recovered": recovered })))
}
