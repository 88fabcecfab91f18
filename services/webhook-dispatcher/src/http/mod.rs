//! Internal webhook routes (the gateway forwards `/api/v1/webhook-endpoints/**` and
//! `/api/v1/webhook-deliveries/**` here, admin only). Handlers translate: parse, call the store,
//! map the result.

mod deliveries;
mod endpoints;

use crate::guard::Guard;
use crate::secrets::Keyring;
use crate::store::{Attempt, Delivery};
use actix_web::web;
use chrono::{DateTime, Utc};
use platform::db::PgPool;
use platform::problem::{FieldError, Problem};
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::Notify;
use uuid::Uuid;

/// What the handlers share.
pub struct AppState {
    pub pool: PgPool,
    /// Checks endpoint URLs at creation as the worker does at delivery.
    pub guard: Guard,
    /// The delivery worker's doorbell, rung when a resend or recovery makes deliveries due.
    pub wake: Arc<Notify>,
    /// Seals the signing secrets issued at creation and rotation.
    pub keyring: Arc<Keyring>,
}

/// Every route is admin-only, checked here too (not only at the gateway): the dispatcher is
/// reachable only with valid admin credentials even when called directly.
pub fn routes(cfg: &mut web::ServiceConfig, state: web::Data<AppState>) {
    cfg.app_data(state).service(
        web::scope("")
            .wrap(actix_web::middleware::from_fn(platform::auth::admin_only))
            .route("/webhook-endpoints", web::post().to(endpoints::create))
            .route("/webhook-endpoints", web::get().to(endpoints::list))
            .route("/webhook-endpoints/{id}", web::get().to(endpoints::get))
            .route("/webhook-endpoints/{id}", web::patch().to(endpoints::update))
            .route("/webhook-endpoints/{id}", web::delete().to(endpoints::delete))
            .route("/webhook-endpoints/{id}/rotate-secret", web::post().to(endpoints::rotate_secret))
            .route("/webhook-endpoints/{id}/deliveries", web::get().to(deliveries::list))
            .route("/webhook-endpoints/{id}/recover", web::post().to(deliveries::recover))
            .route("/webhook-deliveries/{id}", web::get().to(deliveries::get))
            .route("/webhook-deliveries/{id}/resend", web::post().to(deliveries::resend)),
    );
}

#[derive(Debug, Serialize)]
pub struct AttemptView {
    pub id: Uuid,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub duration_ms: i32,
    /// The first 4 KiB of the answer.
    pub response_body: Option<String>,
    pub error: Option<String>,
}

impl From<Attempt> for AttemptView {
    fn from(a: Attempt) -> Self {
        Self {
            id: a.id,
            attempted_at: a.attempted_at,
            status_code: a.status_code,
            duration_ms: a.duration_ms,
            response_body: a.response_body,
            error: a.error,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct DeliveryView {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub order_id: Option<Uuid>,
    pub status: crate::domain::DeliveryStatus,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// Every attempt, oldest first.
    pub attempt_log: Vec<AttemptView>,
}

impl DeliveryView {
    /// The delivery with its attempts (taken from `attempts`, which may hold other deliveries').
    fn new(d: Delivery, attempts: &mut Vec<Attempt>) -> Self {
        let (mine, others): (Vec<_>, Vec<_>) = attempts.drain(..).partition(|a| a.delivery_id == d.id);
        *attempts = others;
        Self {
            id: d.id,
            endpoint_id: d.endpoint_id,
            event_id: d.event_id,
            event_type: d.event_type,
            order_id: d.order_id,
            status: d.status,
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
            attempt_log: mine.into_iter().map(AttemptView::from).collect(),
        }
    }
}

fn db_problem(error: impl std::error::Error + 'static) -> Problem {
    Problem::internal(&error)
}

async fn connection(state: &AppState) -> Result<platform::db::PooledConnection, Problem> {
    state.pool.get().await.map_err(|e| Problem::unavailable(e.to_string()))
}

fn page_limit(limit: Option<i64>) -> Result<i64, Problem> {
    let limit = limit.unwrap_or(100);
    if !(1..=100).contains(&limit) {
        return Err(Problem::validation(vec![FieldError::new("limit", "must be between 1 and 100")]));
    }
    Ok(limit)
}

/// A full page may have a successor; its last id is where the next one starts.
fn next_cursor<T>(items: &[T], limit: i64, id: impl Fn(&T) -> Uuid) -> Option<Uuid> {
    if items.len() as i64 == limit { items.last().map(id) } else { None }
}
