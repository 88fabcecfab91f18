//! Operator routes under `/api/v1/admin`: dead-letter queues and orders stuck in the saga.
//! Every one needs the admin role (401 without a token, 403 for a customer).

use super::problems;
use crate::dead_letters::{self, DeadLetters, QueueListing};
use crate::http::openapi::ProblemDoc;
use crate::stuck_orders::{self, Redriven, StuckOrder};
use actix_web::{HttpResponse, web};
use platform::auth::Admin;
use platform::db::PgPool;
use platform::problem::{FieldError, Problem};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Operator settings, from `Settings`.
pub struct AdminPolicy {
    pub stuck_order_after_seconds: i64,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    /// One queue (`<service>.inbox.dlq`); all of them when absent.
    queue: Option<String>,
    /// Messages shown per queue (0–100, default 20); the count is always complete.
    limit: Option<usize>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetterListing {
    pub queues: Vec<QueueListing>,
}

#[utoipa::path(get, path = "/api/v1/admin/dead-letters", tag = "operations", params(DeadLetterQuery),
    responses((status = 200, description = "Per queue: its count and the first messages (peeked, left in place)", body = DeadLetterListing),
        (status = 401, body = ProblemDoc), (status = 403, body = ProblemDoc), (status = 422, body = ProblemDoc), (status = 503, body = ProblemDoc)),
    security(("bearer" = [])))]
pub async fn list_dead_letters(
    _admin: Admin,
    dlq: web::Data<DeadLetters>,
    query: web::Query<DeadLetterQuery>,
) -> Result<HttpResponse, Problem> {
    let limit = query.limit.unwrap_or(20);
    if limit > 100 {
        return Err(Problem::validation(vec![FieldError::new("limit", "must be between 0 and 100")]));
    }
    let names = match &query.queue {
        Some(queue) => vec![queue.clone()],
        None => dead_letters::queues(),
    };
    let mut queues = Vec::with_capacity(names.len());
    for name in names {
        queues.push(dlq.list(&name, limit).await.map_err(problems::dead_letter)?);
    }
    Ok(HttpResponse::Ok().json(DeadLetterListing { queues }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// `<service>.inbox.dlq`
    queue: String,
    /// Replay only this message (its AMQP message id, which is the event id).
    message_id: Option<String>,
    /// At most this many (default: all).
    limit: Option<usize>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Replayed {
    pub replayed: usize,
}

#[utoipa::path(post, path = "/api/v1/admin/dead-letters/replay", tag = "operations", request_body = ReplayRequest,
    responses((status = 200, description = "Republished to the queue's inbox (confirmed), then removed from the DLQ", body = Replayed),
        (status = 401, body = ProblemDoc), (status = 403, body = ProblemDoc), (status = 404, description = "No message with that id", body = ProblemDoc),
        (status = 422, body = ProblemDoc), (status = 503, body = ProblemDoc)),
    security(("bearer" = [])))]
pub async fn replay_dead_letters(
    _admin: Admin,
    dlq: web::Data<DeadLetters>,
    body: web::Json<ReplayRequest>,
) -> Result<HttpResponse, Problem> {
    let limit = body.limit.unwrap_or(usize::MAX);
    let replayed =
        dlq.replay(&body.queue, body.message_id.as_deref(), limit).await.map_err(problems::dead_letter)?;
    if replayed == 0 && body.message_id.is_some() {
        return Err(Problem::not_found("Dead-lettered message"));
    }
    Ok(HttpResponse::Ok().json(Replayed { replayed }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    queue: String,
    /// The queue name again, to confirm.
    confirm: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Purged {
    pub purged: u32,
}

#[utoipa::path(post, path = "/api/v1/admin/dead-letters/purge", tag = "operations", request_body = PurgeRequest,
    responses((status = 200, description = "Every ready message deleted", body = Purged),
        (status = 401, body = ProblemDoc), (status = 403, body = ProblemDoc),
        (status = 422, description = "`confirm` is not the queue name, or not a DLQ", body = ProblemDoc), (status = 503, body = ProblemDoc)),
    security(("bearer" = [])))]
pub async fn purge_dead_letters(
    _admin: Admin,
    dlq: web::Data<DeadLetters>,
    body: web::Json<PurgeRequest>,
) -> Result<HttpResponse, Problem> {
    if body.confirm != body.queue {
        return Err(Problem::validation(vec![FieldError::new(
            "confirm",
            "must repeat the queue name exactly",
        )]));
    }
    let purged = dlq.purge(&body.queue).await.map_err(problems::dead_letter)?;
    tracing::warn!(queue = %body.queue, purged, "dead-letter queue purged");
    Ok(HttpResponse::Ok().json(Purged { purged }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StuckQuery {
    /// Default: `STUCK_ORDER_AFTER_SECONDS` (900).
    older_than_seconds: Option<i64>,
    /// 1–500, default 100.
    limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StuckOrders {
    pub older_than_seconds: i64,
    pub items: Vec<StuckOrder>,
}

#[utoipa::path(get, path = "/api/v1/admin/stuck-orders", tag = "operations", params(StuckQuery),
    responses((status = 200, description = "Pending or processing orders whose last status change is older, oldest first", body = StuckOrders),
        (status = 401, body = ProblemDoc), (status = 403, body = ProblemDoc), (status = 422, body = ProblemDoc)),
    security(("bearer" = [])))]
pub async fn stuck_orders(
    _admin: Admin,
    pool: web::Data<PgPool>,
    policy: web::Data<AdminPolicy>,
    query: web::Query<StuckQuery>,
) -> Result<HttpResponse, Problem> {
    let older_than = query.older_than_seconds.unwrap_or(policy.stuck_order_after_seconds);
    let limit = query.limit.unwrap_or(100);
    let mut errors = Vec::new();
    if older_than < 0 {
        errors.push(FieldError::new("older_than_seconds", "must not be negative"));
    }
    if !(1..=500).contains(&limit) {
        errors.push(FieldError::new("limit", "must be between 1 and 500"));
    }
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    let mut conn = connection(&pool).await?;
    let items = stuck_orders::list(&mut conn, older_than, limit).await.map_err(|e| Problem::internal(&e))?;
    Ok(HttpResponse::Ok().json(StuckOrders { older_than_seconds: older_than, items }))
}

#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/redrive", tag = "operations",
    params(("id" = Uuid, Path, description = "Order id")),
    responses((status = 200, description = "The current step's event enqueued again (pending: order.created, processing: payment.requested)", body = Redriven),
        (status = 401, body = ProblemDoc), (status = 403, body = ProblemDoc), (status = 404, body = ProblemDoc),
        (status = 409, description = "Not in the saga any more", body = ProblemDoc)),
    security(("bearer" = [])))]
pub async fn redrive(
    _admin: Admin,
    pool: web::Data<PgPool>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, Problem> {
    let mut conn = connection(&pool).await?;
    let redriven = stuck_orders::redrive(&mut conn, id.into_inner()).await.map_err(problems::order)?;
    Ok(HttpResponse::Ok().json(redriven))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailRequest {
    /// A note for the status history.
    reason: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/fail", tag = "operations", request_body(content = FailRequest, description = "Optional"),
    params(("id" = Uuid, Path, description = "Order id")),
    responses((status = 200, description = "Failed with reason `expired`; order.failed published", body = crate::orders::OrderView),
        (status = 401, body = ProblemDoc), (status = 403, body = ProblemDoc), (status = 404, body = ProblemDoc),
        (status = 409, description = "Not pending or processing", body = ProblemDoc)),
    security(("bearer" = [])))]
pub async fn fail(
    _admin: Admin,
    pool: web::Data<PgPool>,
    id: web::Path<Uuid>,
    body: Option<web::Json<FailRequest>>,
) -> Result<HttpResponse, Problem> {
    let note = body.and_then(|b| b.into_inner().reason);
    let mut conn = connection(&pool).await?;
    let order =
        stuck_orders::expire(&mut conn, id.into_inner(), note.as_deref()).await.map_err(problems::order)?;
    Ok(HttpResponse::Ok().json(order))
}

async fn connection(pool: &PgPool) -> Result<platform::db::PooledConnection, Problem> {
    pool.get().await.map_err(|e| Problem::unavailable(e.to_string()))
}
