//! The HTTP server every service runs: request ids, access metrics, JSON error mapping,
//! `/health/live`, `/health/ready`, `/health/broker` and `/metrics`, and a graceful stop on the
//! shared token.

use crate::problem::{FieldError, Problem};
use actix_web::dev::{Server, Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{App, HttpResponse, HttpServer, web};
use futures_util::future::BoxFuture;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::net::TcpListener;
use std::sync::{Arc, OnceLock};
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, when called inside one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A client-supplied request id is kept only when it is short and plain, so it is safe to echo
/// and to log; otherwise a fresh one is generated.
pub fn accept_request_id(candidate: Option<&str>) -> String {
    match candidate {
        Some(id)
            if !id.is_empty()
                && id.len() <= 128
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)) =>
        {
            id.to_owned()
        }
        _ => uuid::Uuid::new_v4().to_string(),
    }
}

/// One named dependency and whether it answered.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
}

pub type Readiness = Arc<dyn Fn() -> BoxFuture<'static, Vec<Check>> + Send + Sync>;

/// The name of the broker's check (messaging's `Runtime::readiness`). It is a signal of its own
/// (`/health/broker`, the `broker_connected` gauge), not part of readiness: readiness means "can
/// do its job for its callers" (design §4a), which for the gateway is "can accept and durably
/// store orders" — PostgreSQL. The outbox exists so that intake survives a broker outage; a
/// readiness probe that failed with the broker would take every gateway pod out of the
/// Kubernetes Service at once and refuse the very orders the outbox could hold. The services
/// behind the gateway are the same: their callers reach them over HTTP and need their database,
/// and their consumers reconnect by themselves whether or not the pod is in a Service, so
/// leaving the broker out costs nothing and keeps their read APIs up during an outage.
pub const BROKER_CHECK: &str = "broker";

/// How often `broker_connected` is refreshed.
const BROKER_GAUGE_PERIOD: std::time::Duration = std::time::Duration::from_secs(5);

/// The process-wide Prometheus recorder; installed once even when tests start several services
/// in one process.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
            let builder = PrometheusBuilder::new();
            let builder = builder.set_buckets_for_metric(Matcher::Suffix("seconds".into()), &buckets).unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(handle) => handle,
                Err(error) => {
                    tracing::warn!(%error, "metrics recorder already installed elsewhere; /metrics will be empty");
                    PrometheusBuilder::new().build_recorder().handle()
                }
            }
        })
        .clone()
}

/// Put into the app data by a service whose port is public: its `/metrics` route then answers
/// "no such route", and the service serves metrics on a separate listener instead.
#[derive(Debug, Clone, Copy)]
pub struct MetricsElsewhere;

pub struct HttpSettings {
    /// The service's name, on every request span.
    pub service: &'static str,
    pub listener: TcpListener,
    pub body_limit_bytes: usize,
    pub workers: usize,
    /// How long in-flight requests may run on after a stop.
    pub shutdown_timeout_seconds: u64,
}

/// Builds and starts the server; the caller awaits the returned `Server`. Cancelling `cancel`
/// stops accepting connections and lets in-flight requests finish.
pub fn serve<F>(
    settings: HttpSettings,
    readiness: Readiness,
    cancel: CancellationToken,
    routes: F,
) -> std::io::Result<Server>
where
    F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
{
    let metrics = metrics_handle();
    let gauge_readiness = readiness.clone();
    let body_limit = settings.body_limit_bytes;
    let service = settings.service;
    let server = HttpServer::new(move || {
        let readiness = readiness.clone();
        let metrics = metrics.clone();
        App::new()
            .wrap_fn(move |req, srv| {
                let id = accept_request_id(req.headers().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()));
                let method = req.method().to_string();
                let started = Instant::now();
                let span = tracing::info_span!("http", service, request_id = %id, %method, path = %req.path(), trace_id = tracing::field::Empty);
                let traceparent = req.headers().get(crate::trace::TRACEPARENT_HEADER).and_then(|v| v.to_str().ok());
                crate::trace::continue_trace(&span, traceparent);
                let call = span.in_scope(|| srv.call(req));
                let scoped_id = id.clone();
                let handled = async move {
                    let mut response: ServiceResponse = call.await?;
                    let route = response.request().match_pattern().unwrap_or_else(|| "unmatched".into());
                    let status = response.status().as_u16().to_string();
                    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
                    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route).record(started.elapsed().as_secs_f64());
                    if let Ok(value) = HeaderValue::from_str(&id) {
                        response.headers_mut().insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
                    }
                    Ok(response)
                };
                REQUEST_ID.scope(scoped_id, handled.instrument(span))
            })
            .app_data(json_config(body_limit))
            .app_data(web::PathConfig::default().error_handler(|err, _| {
                Problem::new(StatusCode::NOT_FOUND, "not_found", "No such resource").with_detail(err.to_string()).into()
            }))
            .app_data(web::QueryConfig::default().error_handler(|err, _| {
                Problem::new(StatusCode::BAD_REQUEST, "invalid_query", "The query string is not valid").with_detail(err.to_string()).into()
            }))
            .app_data(web::PayloadConfig::new(body_limit))
            .route("/health/live", web::get().to(|| async { HttpResponse::Ok().json(serde_json::json!({"status": "live"})) }))
            .route("/health/ready", web::get().to({
                let readiness = readiness.clone();
                move || ready(readiness.clone())
            }))
            .route("/health/broker", web::get().to(move || broker_health(readiness.clone())))
            .route("/metrics", web::get().to(move |req: actix_web::HttpRequest| {
                // A public service (the gateway) serves its metrics on a listener of its own.
                let elsewhere = req.app_data::<MetricsElsewhere>().is_some();
                let body = if elsewhere { String::new() } else { metrics.render() };
                async move {
                    if elsewhere {
                        return Problem::new(StatusCode::NOT_FOUND, "route_not_found", "No such route").error_response_owned();
                    }
                    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body)
                }
            }))
            .configure(routes.clone())
            .default_service(web::to(|| async {
                Problem::new(StatusCode::NOT_FOUND, "route_not_found", "No such route").error_response_owned()
            }))
    })
    .workers(settings.workers.max(1))
    .disable_signals()
    .shutdown_timeout(settings.shutdown_timeout_seconds)
    .listen(settings.listener)?
    .run();
    let handle = server.handle();
    tokio::spawn(report_broker(service, gauge_readiness, cancel.clone()));
    tokio::spawn(async move {
        cancel.cancelled().await;
        handle.stop(true).await;
    });
    Ok(server)
}

/// `/health/ready`, what the readiness probes ask: every check but the broker's.
async fn ready(readiness: Readiness) -> HttpResponse {
    let checks: Vec<Check> =
        readiness().await.into_iter().filter(|check| check.name != BROKER_CHECK).collect();
    let all_ok = checks.iter().all(|check| check.ok);
    let status = if all_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    HttpResponse::build(status).json(serde_json::json!({
        "status": if all_ok { "ready" } else { "not_ready" },
        "checks": checks,
    }))
}

/// `/health/broker`: 200 while the RabbitMQ connection is up, 503 while it is not (for people
/// and monitors; no probe should act on it). "No such route" on a service without a broker.
async fn broker_health(readiness: Readiness) -> HttpResponse {
    match readiness().await.into_iter().find(|check| check.name == BROKER_CHECK) {
        Some(Check { ok: true, .. }) => HttpResponse::Ok().json(serde_json::json!({"status": "connected"})),
        Some(Check { ok: false, .. }) => HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "status": "disconnected",
            "detail": "RabbitMQ is unreachable: accepted work waits in the outbox and is published once it is back",
        })),
        None => Problem::new(StatusCode::NOT_FOUND, "route_not_found", "No such route").error_response_owned(),
    }
}

/// `broker_connected{service}`, 1 or 0, from start-up on: a service that has never reached the
/// broker reports 0 too (messaging's `amqp_connected` appears only after a first connection).
/// The alert `BrokerDisconnected` watches it, since readiness no longer does.
async fn report_broker(service: &'static str, readiness: Readiness, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(BROKER_GAUGE_PERIOD);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => return,
        }
        let checks = tokio::select! {
            checks = readiness() => checks,
            _ = cancel.cancelled() => return,
        };
        let Some(broker) = checks.into_iter().find(|check| check.name == BROKER_CHECK) else {
            return; // A service without a broker has nothing to report.
        };
        metrics::gauge!("broker_connected", "service" => service).set(if broker.ok { 1.0 } else { 0.0 });
    }
}

fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default().limit(limit).error_handler(|err, _| json_problem(&err).into())
}

/// Maps every way a JSON body can be wrong to a 4xx problem that says which way.
pub fn json_problem(err: &actix_web::error::JsonPayloadError) -> Problem {
    use actix_web::error::JsonPayloadError as E;
    match err {
        E::Overflow { limit } | E::OverflowKnownLength { limit, .. } => {
            Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "The request body is too large")
                .with_detail(format!("the limit is {limit} bytes"))
        }
        E::ContentType => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "The request body must be JSON (Content-Type: application/json)",
        ),
        E::Deserialize(error) if error.is_data() => {
            Problem::validation(vec![FieldError::new(data_error_field(error), error.to_string())])
        }
        E::Deserialize(error) => {
            Problem::new(StatusCode::BAD_REQUEST, "malformed_json", "The request body is not valid JSON")
                .with_detail(error.to_string())
        }
        other => {
            Problem::new(StatusCode::BAD_REQUEST, "unreadable_body", "The request body could not be read")
                .with_detail(other.to_string())
        }
    }
}

/// serde names the missing or mistyped field inside its message; pull it out for `errors[].field`.
fn data_error_field(error: &serde_json::Error) -> String {
    let message = error.to_string();
    message
        .split('`')
        .nth(1)
        .filter(|_| message.starts_with("missing field") || message.starts_with("unknown field"))
        .unwrap_or("body")
        .to_owned()
}

trait OwnedErrorResponse {
    fn error_response_owned(self) -> HttpResponse;
}

impl OwnedErrorResponse for Problem {
    fn error_response_owned(self) -> HttpResponse {
        actix_web::ResponseError::error_response(&self)
    }
}

/// Binds `addr` (port 0 picks a free port, which tests use) and reports the port.
pub fn bind(addr: &str) -> std::io::Result<(TcpListener, u16)> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    Ok((listener, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_request_ids_are_kept_and_hostile_ones_replaced() {
        assert_eq!(accept_request_id(Some("abc-123_x.y")), "abc-123_x.y");
        assert_ne!(accept_request_id(Some("bad id\r\ninjected")), "bad id\r\ninjected");
        assert_eq!(accept_request_id(Some(&"a".repeat(129))).len(), 36);
        assert_eq!(accept_request_id(None).len(), 36);
    }

    fn fixed(database: bool, broker: bool) -> Readiness {
        Arc::new(move || {
            Box::pin(async move {
                vec![Check { name: "database", ok: database }, Check { name: BROKER_CHECK, ok: broker }]
            })
        })
    }

    #[actix_web::test]
    async fn ops_setup_readiness_leaves_the_broker_to_its_own_signal() {
        assert_eq!(ready(fixed(true, false)).await.status(), StatusCode::OK);
        assert_eq!(ready(fixed(false, true)).await.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(broker_health(fixed(true, false)).await.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(broker_health(fixed(false, true)).await.status(), StatusCode::OK);
        let no_broker: Readiness =
            Arc::new(|| Box::pin(async { vec![Check { name: "database", ok: true }] }));
        assert_eq!(broker_health(no_broker).await.status(), StatusCode::NOT_FOUND);
    }
}
