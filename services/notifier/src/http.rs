//! Internal notification routes, for operators and tests: what was sent, what is pending and
//! why something failed.

use crate::store::{self, ListFilter, Notification, STATUSES};
use actix_web::{HttpResponse, web};
use platform::db::PgPool;
use platform::problem::{FieldError, Problem};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub fn routes(cfg: &mut web::ServiceConfig, pool: PgPool) {
    cfg.app_data(web::Data::new(pool))
        .route("/notifications", web::get().to(list_notifications));
}

#[derive(Debug, Serialize)]
pub struct NotificationView {
    pub id: Uuid,
    pub order_id: Uuid,
    pub kind: String,
    pub channel: String,
    pub recipient: String,
    pub subject: String,
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
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
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    order_id: Option<Uuid>,
    status: Option<String>,
    limit: Option<i64>,
}

async fn list_notifications(
    pool: web::Data<PgPool>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, Problem> {
    let query = query.into_inner();
    let mut errors = Vec::new();
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        errors.push(FieldError::new("limit", "must be between 1 and 100"));
    }
    if query
        .status
        .as_deref()
        .is_some_and(|status| !STATUSES.contains(&status))
    {
        errors.push(FieldError::new("status", "must be one of pending, sent, failed"));
    }
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    let mut conn = pool
        .get()
        .await
        .map_err(|e| Problem::unavailable(e.to_string()))?;
    let filter = ListFilter {
        order_id: query.order_id,
        status: query.status,
    };
    let rows = store::list(&mut conn, &filter, limit)
        .await
        .map_err(|error| Problem::internal(&error))?;
    let items: Vec<NotificationView> = rows.into_iter().map(NotificationView::from).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items, "next_cursor": null })))
}
