//! Forwarding admin routes to the service that owns the resource. The body is passed through
//! untouched (signed provider callbacks need the raw bytes), with the request id, and the
//! upstream's status and body come back as they are.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use platform::auth::{MaybeAuthenticated, Role};
use platform::db::PgPool;
use platform::http::REQUEST_ID_HEADER;
use platform::problem::Problem;

#[derive(Clone)]
pub struct Upstreams {
    pub client: reqwest::Client,
    pub inventory: String,
    pub payment: String,
    pub notifier: String,
    pub webhooks: String,
}

/// Anyone reads the catalog; only admins change it (checked here and again by inventory).
pub async fn products(
    req: HttpRequest,
    body: web::Bytes,
    upstreams: web::Data<Upstreams>,
) -> Result<HttpResponse, Problem> {
    if req.method() != actix_web::http::Method::GET {
        require_admin(&req)?;
    }
    forward(&req, body, &upstreams.client, &upstreams.inventory, "inventory").await
}

fn require_admin(req: &HttpRequest) -> Result<(), Problem> {
    match platform::auth::caller(req)? {
        Some(claims) if claims.role == Role::Admin => Ok(()),
        Some(_) => Err(Problem::new(StatusCode::FORBIDDEN, "forbidden", "This needs the admin role")),
        None => Err(Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Valid credentials are required")),
    }
}

/// Provider callbacks and the simulator: authenticated by the payment service's signatures.
pub async fn payments(
    req: HttpRequest,
    body: web::Bytes,
    upstreams: web::Data<Upstreams>,
) -> Result<HttpResponse, Problem> {
    forward(&req, body, &upstreams.client, &upstreams.payment, "payment").await
}

/// An order's payment, for whoever may read the order.
pub async fn order_payment(
    req: HttpRequest,
    id: web::Path<uuid::Uuid>,
    caller: MaybeAuthenticated,
    pool: web::Data<PgPool>,
    upstreams: web::Data<Upstreams>,
) -> Result<HttpResponse, Problem> {
    let mut conn = pool.get().await.map_err(|e| Problem::unavailable(e.to_string()))?;
    crate::orders::find_for(&mut conn, id.into_inner(), caller.0.as_ref()).await.map_err(
        |error| match error {
            crate::orders::OrderError::Unauthenticated => {
                Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Log in to see this order")
            }
            crate::orders::OrderError::Db(error) => Problem::internal(&error),
            _ => Problem::not_found("Order"),
        },
    )?;
    forward(&req, web::Bytes::new(), &upstreams.client, &upstreams.payment, "payment").await
}

pub async fn notifications(
    req: HttpRequest,
    body: web::Bytes,
    upstreams: web::Data<Upstreams>,
) -> Result<HttpResponse, Problem> {
    require_admin(&req)?;
    forward(&req, body, &upstreams.client, &upstreams.notifier, "notifier").await
}

/// Webhook endpoints and their deliveries, owned by the dispatcher.
pub async fn webhook_endpoints(
    req: HttpRequest,
    body: web::Bytes,
    upstreams: web::Data<Upstreams>,
) -> Result<HttpResponse, Problem> {
    require_admin(&req)?;
    forward(&req, body, &upstreams.client, &upstreams.webhooks, "webhook-dispatcher").await
}

async fn forward(
    req: &HttpRequest,
    body: web::Bytes,
    client: &reqwest::Client,
    base: &str,
    service: &str,
) -> Result<HttpResponse, Problem> {
    let path = req.path().strip_prefix("/api/v1").unwrap_or(req.path());
    let mut url = format!("{}{path}", base.trim_end_matches('/'));
    if !req.query_string().is_empty() {
        url = format!("{url}?{}", req.query_string());
    }
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).map_err(|_| {
        Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed")
    })?;
    let mut outgoing = client.request(method, &url).body(body.to_vec());
    for name in ["content-type", "authorization", "idempotency-key", "stripe-signature"] {
        if let Some(value) = req.headers().get(name).and_then(|v| v.to_str().ok()) {
            outgoing = outgoing.header(name, value);
        }
    }
    // This request's span (a child of the caller's) when tracing is on; else the caller's value.
    let traceparent = platform::trace::current_traceparent().or_else(|| {
        req.headers()
            .get(platform::trace::TRACEPARENT_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
    if let Some(traceparent) = traceparent {
        outgoing = outgoing.header(platform::trace::TRACEPARENT_HEADER, traceparent);
    }
    if let Some(id) = platform::http::current_request_id() {
        outgoing = outgoing.header(REQUEST_ID_HEADER, id);
    }
    let upstream = outgoing.send().await.map_err(|error| {
        tracing::warn!(%error, service, "upstream unreachable");
        Problem::unavailable(format!("{service} is not reachable; try again shortly"))
    })?;
    let status = StatusCode::from_u16(upstream.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = HttpResponse::build(status);
    for name in ["content-type", "location", "retry-after"] {
        if let Some(value) = upstream.headers().get(name).and_then(|v| v.to_str().ok()) {
            let value = if name == "location" && !value.starts_with("/api/v1") && value.starts_with('/') {
                format!("/api/v1{value}")
            } else {
                value.to_owned()
            };
            response.insert_header((name, value));
        }
    }
    let bytes = upstream
        .bytes()
        .await
        .map_err(|error| Problem::unavailable(format!("{service} answered incompletely: {error}")))?;
    Ok(response.body(bytes))
}
