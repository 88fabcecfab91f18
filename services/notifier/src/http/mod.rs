//! Admin routes (the gateway forwards `/api/v1/notifications/**` here): what was sent, what is
//! pending and why something failed, and moving failed notifications back to pending.

use crate::store::admin::{self, ListFilter};
use crate::store::{Notification, NotificationStatus};
use crate::{domain, retry};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use contracts::events::NotificationKind;
use platform::auth::Admin;
use platform::db::{PgPool, PooledConnection};
use platform::problem::{FieldError, Problem};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::Notify;
use uuid::Uuid;

/// What the routes share: the pool, and the sender's wake-up so a retried row leaves at once.
#[derive(Clone)]
pub struct AdminState {
    pub pool: PgPool,
    pub wake: Arc<Notify>,
}

pub fn routes(cfg: &mut web::ServiceConfig, state: AdminState) {
    cfg.app_data(web::Data::new(state))
        .route("/notifications", web::get().to(list_notifications))
        .route("/notifications/retry-failed", web::post().to(retry_failed))
        .route("/notifications/{id}", web::get().to(get_notification))
        .route("/notifications/{id}/retry", web::post().to(retry_one));
}

#[derive(Debug, Serialize)]
pub struct NotificationView {
    pub id: Uuid,
    pub order_id: Uuid,
    pub kind: NotificationKind,
    pub channel: domain::Channel,
    pub recipient: String,
    pub subject: String,
    pub status: NotificationStatus,
    /// Attempts since the notification was created or last retried by an operator.
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// Who took the message: `smtp`, `mail_dir`, `http` or `log` (a `logged` message); absent
    /// until it is sent or logged.
    pub provider: Option<String>,
}

impl From<Notification> for NotificationView {
    fn from(n: Notification) -> Self {
        Self {
            id: n.id,
            order_id: n.order_id,
            kind: n.kind,
            channel: n.channel,
            recipient: n.recipient,
            subject: n.subject,
            status: n.status,
            attempts: n.attempts,
            last_error: n.last_error,
            created_at: n.created_at,
            sent_at: n.sent_at,
            provider: n.provider,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    order_id: Option<Uuid>,
    status: Option<String>,
    kind: Option<String>,
    channel: Option<String>,
    created_after: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
    limit: Option<i64>,
    cursor: Option<Uuid>,
}

async fn connection(state: &AdminState) -> Result<PooledConnection, Problem> {
    state.pool.get().await.map_err(|e| Problem::unavailable(e.to_string()))
}

async fn list_notifications(
    _admin: Admin,
    state: web::Data<AdminState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, Problem> {
    let query = query.into_inner();
    let mut errors = Vec::new();
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        errors.push(FieldError::new("limit", "must be between 1 and 100"));
    }
    let status = query.status.as_deref().map(str::parse::<NotificationStatus>).transpose();
    if status.is_err() {
        errors.push(FieldError::new("status", "must be one of pending, sent, logged, failed"));
    }
    let kind = query.kind.as_deref().map(str::parse::<NotificationKind>).transpose();
    if kind.is_err() {
        errors.push(FieldError::new(
            "kind",
            "must be one of invoice, failure_notice, cancellation_notice, refund_notice",
        ));
    }
    let channel = query.channel.as_deref().map(str::parse::<domain::Channel>).transpose();
    if channel.is_err() {
        errors.push(FieldError::new("channel", "must be one of email, sms"));
    }
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    let filter = ListFilter {
        order_id: query.order_id,
        status: status.ok().flatten(),
        kind: kind.ok().flatten(),
        channel: channel.ok().flatten(),
        created_after: query.created_after,
        created_before: query.created_before,
        cursor: query.cursor,
    };
    let mut conn = connection(&state).await?;
    let rows = admin::list(&mut conn, &filter, limit).await.map_err(|error| Problem::internal(&error))?;
    let next_cursor = (rows.len() as i64 == limit).then(|| rows.last().map(|row| row.id)).flatten();
    let items: Vec<NotificationView> = rows.into_iter().map(NotificationView::from).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items, "next_cursor": next_cursor })))
}

#[derive(Debug, Serialize)]
struct AttemptView {
    attempted_at: DateTime<Utc>,
    outcome: crate::store::AttemptOutcome,
    error: Option<String>,
    provider: Option<String>,
}

/// One notification with every attempt at it.
async fn get_notification(
    _admin: Admin,
    state: web::Data<AdminState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let mut conn = connection(&state).await?;
    let found = admin::find(&mut conn, id).await.map_err(|error| Problem::internal(&error))?;
    let notification = found.ok_or_else(|| Problem::not_found("Notification"))?;
    let attempts = admin::attempts(&mut conn, id).await.map_err(|error| Problem::internal(&error))?;
    let attempts: Vec<AttemptView> = attempts
        .into_iter()
        .map(|a| AttemptView {
            attempted_at: a.attempted_at,
            outcome: a.outcome,
            error: a.error,
            provider: a.provider,
        })
        .collect();
    let mut body = serde_json::to_value(NotificationView::from(notification)).unwrap_or_default();
    body["attempt_history"] = serde_json::json!(attempts);
    Ok(HttpResponse::Ok().json(body))
}

async fn retry_one(
    _admin: Admin,
    state: web::Data<AdminState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let mut conn = connection(&state).await?;
    if !admin::retry_one(&mut conn, id).await.map_err(|error| Problem::internal(&error))? {
        let found = admin::find(&mut conn, id).await.map_err(|error| Problem::internal(&error))?;
        let notification = found.ok_or_else(|| Problem::not_found("Notification"))?;
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "not_failed",
            "Only a failed notification can be retried",
        )
        .with_extension("current_status", <&str>::from(notification.status)));
    }
    state.wake.notify_one();
    let found = admin::find(&mut conn, id).await.map_err(|error| Problem::internal(&error))?;
    let notification = found.ok_or_else(|| Problem::not_found("Notification"))?;
    Ok(HttpResponse::Ok().json(NotificationView::from(notification)))
}

async fn retry_failed(
    _admin: Admin,
    state: web::Data<AdminState>,
    body: web::Json<retry::RetryFailed>,
) -> Result<HttpResponse, Problem> {
    let request = body.into_inner();
    let limit =
        request.limit().map_err(|message| Problem::validation(vec![FieldError::new("limit", message)]))?;
    let mut conn = connection(&state).await?;
    let retried = admin::retry_failed(&mut conn, request.since, request.until, limit)
        .await
        .map_err(|error| Problem::internal(&error))?;
    if retried > 0 {
        state.wake.notify_one();
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "retried": retried })))
}
