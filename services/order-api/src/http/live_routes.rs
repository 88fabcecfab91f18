//! `GET /orders/{id}/events` and `GET /orders/events`: an order's status changes as
//! Server-Sent Events. Each event is one status-history row: `id:` is the row's id, `data:` the
//! history entry with its `order_id`. A client that reconnects with `Last-Event-ID` (browsers
//! do it themselves) first gets what it missed from the stored history, then live events.

use super::client::ClientAddress;
use super::order_routes::{TokenQuery, access_token};
use super::problems;
use crate::live::{Hub, LiveEvent, OrderEvent, Position, Scope, StreamPermit, store};
use crate::orders;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use platform::auth::{Authenticated, Claims, MaybeAuthenticated, Role};
use platform::db::PgPool;
use platform::problem::Problem;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

/// History rows read per query while replaying.
const REPLAY_BATCH: i64 = 500;

/// The body of one event (doc-only: the stream writes it as `data:`).
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "a shape for the document only: utoipa reads its fields, no code does")]
pub struct OrderEventDoc {
    /// The order this status change belongs to.
    order_id: Uuid,
    /// A status, or `refunded` / `voided` (what the payment did after the order ended).
    status: String,
    at: chrono::DateTime<chrono::Utc>,
    reason: Option<String>,
    /// An event id (`event:<uuid>`) or an actor (`api`).
    caused_by: String,
}

#[utoipa::path(get, path = "/api/v1/orders/{id}/events", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id"), TokenQuery,
        ("Order-Access-Token" = Option<String>, Header, description = "A guest order's access token (instead of the query parameter; `EventSource` cannot send headers)"),
        ("Last-Event-ID" = Option<i64>, Header, description = "The `id:` of the last event received: the stream resumes after it. Without it, the order's whole history comes first")),
    responses((status = 200, description = "`text/event-stream`: one event per status change (`id:` the history row's id, `data:` an `OrderEventDoc`), comment lines as heartbeats; it ends when the gateway drains (reconnect with `Last-Event-ID`)", content_type = "text/event-stream", body = OrderEventDoc),
        (status = 400, description = "`Last-Event-ID` is not the id of an event", body = crate::http::openapi::ProblemDoc),
        (status = 404, description = "No such order, or not yours (the same answer for both)", body = crate::http::openapi::ProblemDoc),
        (status = 429, description = "This client holds `LIVE_MAX_STREAMS_PER_CLIENT` streams already (`too_many_streams`)", body = crate::http::openapi::ProblemDoc)),
    security((), ("bearer" = [])))]
pub async fn order_events(
    req: HttpRequest,
    pool: web::Data<PgPool>,
    hub: web::Data<Hub>,
    id: web::Path<Uuid>,
    query: web::Query<TokenQuery>,
    caller: MaybeAuthenticated,
    client: ClientAddress,
) -> Result<HttpResponse, Problem> {
    let id = id.into_inner();
    let token = access_token(&req, query.into_inner());
    let last_event_id = last_event_id(&req)?;
    let mut conn = pool.get().await.map_err(|e| Problem::unavailable(e.to_string()))?;
    // The same rule, and the same 404, as `GET /orders/{id}`.
    orders::find_with_token(&mut conn, id, caller.0.as_ref(), token.as_deref())
        .await
        .map_err(problems::order)?;
    let permit = admit(&hub, caller.0.as_ref(), client)?;
    // Without `Last-Event-ID`: the order's whole history, then what follows.
    let cursor = match last_event_id {
        Some(id) => resume_at(&mut conn, id).await?,
        None => Position::default(),
    };
    drop(conn);
    Ok(stream(hub.into_inner(), pool.get_ref().clone(), Scope::Order(id), cursor, permit))
}

#[utoipa::path(get, path = "/api/v1/orders/events", tag = "orders",
    params(("Last-Event-ID" = Option<i64>, Header, description = "The `id:` of the last event received: the stream resumes after it. Without it, the stream starts now")),
    responses((status = 200, description = "`text/event-stream` of the status changes of the caller's orders (every order for an admin), as for one order", content_type = "text/event-stream", body = OrderEventDoc),
        (status = 400, description = "`Last-Event-ID` is not the id of an event", body = crate::http::openapi::ProblemDoc),
        (status = 401, body = crate::http::openapi::ProblemDoc),
        (status = 429, description = "Too many streams open (`too_many_streams`)", body = crate::http::openapi::ProblemDoc)),
    security(("bearer" = [])))]
pub async fn all_events(
    req: HttpRequest,
    pool: web::Data<PgPool>,
    hub: web::Data<Hub>,
    caller: Authenticated,
    client: ClientAddress,
) -> Result<HttpResponse, Problem> {
    let last_event_id = last_event_id(&req)?;
    let scope = match caller.0.role {
        Role::Admin => Scope::All,
        Role::Customer => Scope::Customer(caller.0.sub),
    };
    let permit = admit(&hub, Some(&caller.0), client)?;
    let mut conn = pool.get().await.map_err(|e| Problem::unavailable(e.to_string()))?;
    let cursor = match last_event_id {
        Some(id) => resume_at(&mut conn, id).await?,
        None => store::head(&mut conn).await.map_err(|e| Problem::internal(&e))?,
    };
    drop(conn);
    Ok(stream(hub.into_inner(), pool.get_ref().clone(), scope, cursor, permit))
}

fn last_event_id(req: &HttpRequest) -> Result<Option<i64>, Problem> {
    let Some(value) = req.headers().get("last-event-id") else { return Ok(None) };
    value
        .to_str()
        .ok()
        .and_then(|raw| raw.trim().parse::<i64>().ok())
        .map(Some)
        .ok_or_else(invalid_last_event_id)
}

fn invalid_last_event_id() -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "invalid_last_event_id", "Last-Event-ID is not the id of an event")
        .with_detail("send the `id:` of the last event received, or no Last-Event-ID to start over")
}

async fn resume_at(conn: &mut diesel_async::AsyncPgConnection, id: i64) -> Result<Position, Problem> {
    store::position_of(conn, id).await.map_err(|e| Problem::internal(&e))?.ok_or_else(invalid_last_event_id)
}

/// Streams are counted per account, or per address for guests.
fn admit(hub: &Arc<Hub>, caller: Option<&Claims>, client: ClientAddress) -> Result<StreamPermit, Problem> {
    let key = match caller {
        Some(claims) => format!("account:{}", claims.sub),
        None => format!("address:{}", client.0),
    };
    hub.admit(key).ok_or_else(|| {
        let limit = hub.policy.max_streams_per_client;
        Problem::new(StatusCode::TOO_MANY_REQUESTS, "too_many_streams", "Too many live streams are open")
            .with_detail(format!("at most {limit} per client; close one before opening another"))
            .with_extension("limit", limit)
    })
}

fn stream(hub: Arc<Hub>, pool: PgPool, scope: Scope, cursor: Position, permit: StreamPermit) -> HttpResponse {
    let (frames, body) = mpsc::channel::<Bytes>(16);
    actix_web::rt::spawn(pump(hub, pool, scope, cursor, frames, permit));
    let body = futures_util::stream::unfold(body, |mut body| async move {
        body.recv().await.map(|frame| (Ok::<_, std::convert::Infallible>(frame), body))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache, no-store"))
        // Proxies such as nginx would otherwise hold events back to fill a buffer.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}

/// Writes the stream until the client goes away or the gateway drains: the replay after
/// `cursor`, then the live events after whatever the replay reached.
async fn pump(
    hub: Arc<Hub>,
    pool: PgPool,
    scope: Scope,
    mut cursor: Position,
    frames: mpsc::Sender<Bytes>,
    _permit: StreamPermit,
) {
    // Subscribed before the replay reads: whatever the listener sends from now on arrives
    // here, and whatever it sent before is settled, so the replay reads it. Events up to the
    // cursor are skipped, so the two overlap without a duplicate.
    let mut live = hub.subscribe();
    if frames.send(Bytes::from_static(b": connected\n\n")).await.is_err()
        || !replay(&pool, scope, &mut cursor, &frames).await
    {
        return;
    }
    let mut heartbeat =
        tokio::time::interval_at(tokio::time::Instant::now() + hub.policy.heartbeat, hub.policy.heartbeat);
    loop {
        let sent = tokio::select! {
            _ = hub.cancel.cancelled() => return,
            _ = frames.closed() => return,
            _ = heartbeat.tick() => frames.send(Bytes::from_static(b": heartbeat\n\n")).await.is_ok(),
            received = live.recv() => match received {
                Ok(event) if event.position > cursor && scope.shows(&event) => {
                    cursor = event.position;
                    send(&frames, &event).await
                }
                Ok(_) => true,
                // Fell behind the channel: what it dropped is in the database.
                Err(broadcast::error::RecvError::Lagged(_)) => replay(&pool, scope, &mut cursor, &frames).await,
                Err(broadcast::error::RecvError::Closed) => false,
            },
        };
        if !sent {
            return;
        }
    }
}

/// Sends every settled row after `cursor` that `scope` shows; false when the stream must end
/// (the client left, or the database cannot be read: the client resumes with `Last-Event-ID`).
async fn replay(pool: &PgPool, scope: Scope, cursor: &mut Position, frames: &mpsc::Sender<Bytes>) -> bool {
    let Ok(mut conn) = pool.get().await else { return false };
    loop {
        let rows = match store::settled_after(&mut conn, *cursor, scope, REPLAY_BATCH).await {
            Ok(rows) => rows,
            Err(error) => {
                tracing::warn!(%error, "cannot replay the order history; ending the stream");
                return false;
            }
        };
        let full = rows.len() as i64 == REPLAY_BATCH;
        for event in rows {
            *cursor = event.position;
            if !send(frames, &event).await {
                return false;
            }
        }
        if !full {
            return true;
        }
    }
}

/// Writes one event; false when the stream must end.
async fn send(frames: &mpsc::Sender<Bytes>, event: &LiveEvent) -> bool {
    let body = OrderEvent { order_id: event.order_id, entry: &event.entry };
    // JSON has no raw newlines, so one `data:` line carries it.
    let data = match serde_json::to_string(&body) {
        Ok(data) => data,
        Err(error) => {
            tracing::error!(%error, "cannot encode a live order event; ending the stream");
            return false;
        }
    };
    frames.send(Bytes::from(format!("id: {}\ndata: {data}\n\n", event.position.id))).await.is_ok()
}
