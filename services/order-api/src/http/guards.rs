//! What every public request passes through before its handler: CORS, per-client rate limits,
//! the JSON depth limit and `Idempotency-Key` replay.

use crate::http::client::ClientAddress;
use crate::idempotency::{self, Begin, StoredResponse};
use actix_web::body::{BoxBody, MessageBody, to_bytes};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, ResponseError, web};
use platform::db::PgPool;
use platform::problem::Problem;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub struct GuardSettings {
    /// `*` or exact origins; empty: no CORS headers (same-origin only).
    pub cors_origins: Vec<String>,
    pub rate_per_second: f64,
    pub burst: f64,
    pub json_max_depth: usize,
    /// A request holding an `Idempotency-Key` this long without an answer is taken to have died.
    pub idempotency_in_flight_timeout: std::time::Duration,
}

/// Put into a response's extensions by a handler whose answer carries a secret: the body to
/// store for replays instead (the same answer with the secret left out).
#[derive(Debug, Clone)]
pub struct ReplayBody(pub web::Bytes);

fn problem_response(problem: Problem) -> HttpResponse {
    problem.error_response()
}

// ---- CORS ---------------------------------------------------------------------------------

pub async fn cors(
    settings: web::Data<GuardSettings>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let origin = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()).map(str::to_owned);
    let allowed = origin.filter(|o| settings.cors_origins.iter().any(|a| a == "*" || a == o));
    if req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        let mut response = HttpResponse::NoContent();
        if let Some(origin) = &allowed {
            response
                .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.as_str()))
                .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, PATCH, DELETE, OPTIONS"))
                .insert_header((
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    "authorization, content-type, idempotency-key, x-request-id, traceparent",
                ))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"))
                .insert_header((header::VARY, "Origin"));
        }
        return Ok(req.into_response(response.finish()));
    }
    let mut response = next.call(req).await?.map_into_boxed_body();
    if let Some(origin) = allowed
        && let Ok(value) = HeaderValue::from_str(&origin)
    {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("x-request-id, location, retry-after, idempotent-replayed"),
        );
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    Ok(response)
}

// ---- Rate limiting --------------------------------------------------------------------------

/// A token bucket per client (the account for authenticated calls, the client address otherwise,
/// see `http::client`), in this process: with N gateway replicas a client gets N times the rate.
#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// Ok, or the seconds to wait before the next request would pass.
    pub fn check(&self, client: &str, rate: f64, burst: f64) -> Result<(), u64> {
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else { return Ok(()) };
        if buckets.len() > 100_000 {
            buckets.retain(|_, (_, at)| now.duration_since(*at).as_secs() < 60);
        }
        let (tokens, at) = buckets.entry(client.to_owned()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

fn client_of(req: &ServiceRequest) -> String {
    match platform::auth::caller(req.request()) {
        Ok(Some(claims)) => format!("user:{}", claims.sub),
        _ => format!("ip:{}", ClientAddress::of(req.request())),
    }
}

pub async fn rate_limit(
    settings: web::Data<GuardSettings>,
    limiter: web::Data<RateLimiter>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if settings.rate_per_second > 0.0
        && let Err(wait) = limiter.check(&client_of(&req), settings.rate_per_second, settings.burst)
    {
        let problem = Problem::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "Too many requests")
            .with_detail(format!("retry in {wait} s"));
        let mut response = problem_response(problem);
        if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return Ok(req.into_response(response));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

// ---- Bodies: depth limit and idempotency ------------------------------------------------------

/// Nesting depth of a JSON text (brackets outside strings).
pub fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        match (in_string, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_string = false,
            (true, ..) => {}
            (false, _, b'"') => in_string = true,
            (false, _, b'[' | b'{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, _, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn payload_of(bytes: web::Bytes) -> Payload {
    let (_, mut payload) = actix_http::h1::Payload::create(true);
    payload.unread_data(bytes);
    Payload::from(payload)
}

pub async fn bodies(
    settings: web::Data<GuardSettings>,
    pool: web::Data<PgPool>,
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if req.method() != Method::POST && req.method() != Method::PATCH {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let body = match req.extract::<web::Bytes>().await {
        Ok(body) => body,
        Err(error) => {
            let problem = Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The request body is too large",
            )
            .with_detail(error.to_string());
            return Ok(req.into_response(problem_response(problem)));
        }
    };
    if json_depth(&body) > settings.json_max_depth {
        let problem =
            Problem::new(StatusCode::BAD_REQUEST, "json_too_deep", "The JSON body is nested too deeply")
                .with_detail(format!("at most {} levels", settings.json_max_depth));
        return Ok(req.into_response(problem_response(problem)));
    }
    // PostgreSQL cannot store U+0000 in text; refuse it here for every service behind us.
    if body.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
        let problem = Problem::validation(vec![platform::problem::FieldError::new(
            "body",
            "strings may not contain the NUL character (\\u0000)",
        )]);
        return Ok(req.into_response(problem_response(problem)));
    }
    // Login and registration answers carry tokens and are safe to repeat: never recorded.
    let key = req
        .headers()
        .get("idempotency-key")
        .filter(|_| !req.path().starts_with("/api/v1/auth/"))
        .map(|v| v.to_str().map(str::to_owned));
    req.set_payload(payload_of(body.clone()));
    let key = match key {
        None => return Ok(next.call(req).await?.map_into_boxed_body()),
        Some(Ok(key)) if idempotency::valid_key(&key) => key,
        Some(_) => {
            let problem = Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                "The Idempotency-Key is not valid",
            )
            .with_detail("use 1 to 255 visible ASCII characters, e.g. a UUID");
            return Ok(req.into_response(problem_response(problem)));
        }
    };
    // Guests are told apart by address: one guest cannot replay another's answer by its key.
    let scope = match platform::auth::caller(req.request()) {
        Ok(Some(claims)) => claims.sub.to_string(),
        _ => format!("guest:{}", ClientAddress::of(req.request())),
    };
    let secret_route = req.path().starts_with("/api/v1/webhook-endpoints");
    let mut hasher = Sha256::new();
    hasher.update(req.method().as_str().as_bytes());
    hasher.update(req.uri().to_string().as_bytes());
    hasher.update(&body);
    let fingerprint = hasher.finalize().to_vec();
    let mut conn = pool.get().await.map_err(|e| Problem::unavailable(e.to_string()))?;
    match idempotency::begin(&mut conn, &scope, &key, &fingerprint, settings.idempotency_in_flight_timeout)
        .await
        .map_err(|e| Problem::internal(&e))?
    {
        // The handler may record the key with what it creates (an order does), so a retry
        // after a crash between its commit and `finish` finds it.
        Begin::Fresh => {
            actix_web::HttpMessage::extensions_mut(&req)
                .insert(crate::store::IdempotencyClaim { scope: scope.clone(), key: key.clone() });
        }
        Begin::Replay(stored) => return Ok(req.into_response(replay(stored))),
        Begin::Mismatch => {
            let problem = Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "This Idempotency-Key was used for a different request",
            );
            return Ok(req.into_response(problem_response(problem)));
        }
        Begin::InFlight => {
            let problem = Problem::new(
                StatusCode::CONFLICT,
                "idempotency_in_progress",
                "A request with this Idempotency-Key is still being handled; retry shortly",
            );
            return Ok(req.into_response(problem_response(problem)));
        }
    }
    drop(conn);
    let response = next.call(req).await;
    let mut conn = pool.get().await.map_err(|e| Problem::unavailable(e.to_string()))?;
    let response = match response {
        Ok(response) => response,
        Err(error) => {
            idempotency::abandon(&mut conn, &scope, &key).await.map_err(|e| Problem::internal(&e))?;
            return Err(error);
        }
    };
    let (request, response) = response.into_parts();
    let status = response.status();
    let headers = response.headers().clone();
    let replay_body = response.extensions().get::<ReplayBody>().cloned();
    let bytes =
        to_bytes(response.into_body()).await.map_err(|_| Problem::internal(&"unreadable response body"))?;
    let secret = secret_route || no_store(&headers) || carries_secret(&bytes);
    let stored_body = match replay_body {
        Some(ReplayBody(redacted)) => Some(redacted),
        None if secret => None,
        None => Some(bytes.clone()),
    };
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS || stored_body.is_none() {
        idempotency::abandon(&mut conn, &scope, &key).await.map_err(|e| Problem::internal(&e))?;
    } else if let Some(stored_body) = stored_body {
        let text = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::to_owned);
        let stored = StoredResponse {
            status: status.as_u16(),
            body: stored_body.to_vec(),
            content_type: text(header::CONTENT_TYPE),
            location: text(header::LOCATION),
        };
        idempotency::finish(&mut conn, &scope, &key, &stored).await.map_err(|e| Problem::internal(&e))?;
    }
    let mut rebuilt = HttpResponse::build(status);
    for (name, value) in headers.iter() {
        rebuilt.insert_header((name.clone(), value.clone()));
    }
    Ok(ServiceResponse::new(request, rebuilt.body(bytes)))
}

/// `Cache-Control: no-store`: the answer says itself that it must not be kept.
fn no_store(headers: &actix_web::http::header::HeaderMap) -> bool {
    headers
        .get_all(header::CACHE_CONTROL)
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|d| d.trim().eq_ignore_ascii_case("no-store")))
}

/// A JSON object answer with a secret at its top level (a token, a signing secret). A safety
/// net for answers whose route forgot to say so.
fn carries_secret(body: &[u8]) -> bool {
    const SECRET_FIELDS: [&str; 4] = ["access_token", "refresh_token", "secret", "token"];
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(fields)) => {
            SECRET_FIELDS.iter().any(|name| fields.get(*name).is_some_and(|v| !v.is_null()))
        }
        _ => false,
    }
}

fn replay(stored: StoredResponse) -> HttpResponse {
    let mut response = HttpResponse::build(StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK));
    if let Some(content_type) = stored.content_type {
        response.insert_header((header::CONTENT_TYPE, content_type));
    }
    if let Some(location) = stored.location {
        response.insert_header((header::LOCATION, location));
    }
    response.insert_header(("idempotent-replayed", "true"));
    response.body(stored.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_brackets_outside_strings() {
        assert_eq!(json_depth(br#"{"a": [1, {"b": 2}]}"#), 3);
        assert_eq!(json_depth(br#"{"a": "[[[[{{{{"}"#), 1);
        assert_eq!(json_depth(br#"{"a": "\"[[["}"#), 1);
        assert_eq!(json_depth(b"42"), 0);
        assert_eq!(json_depth(&[b'['; 100]), 100);
    }

    #[test]
    fn answers_with_secrets_are_recognised() {
        assert!(carries_secret(br#"{"id": "x", "secret": "whsec_abc"}"#));
        assert!(carries_secret(br#"{"access_token": "eyJ", "token_type": "Bearer"}"#));
        assert!(!carries_secret(br#"{"id": "x", "secret": null}"#));
        assert!(!carries_secret(br#"{"id": "x", "items": [{"secret": "nested is data"}]}"#));
        assert!(!carries_secret(b"not json"));
        let mut headers = actix_web::http::header::HeaderMap::new();
        assert!(!no_store(&headers));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
        assert!(no_store(&headers));
    }

    #[test]
    fn buckets_refill_at_the_rate_and_cap_at_the_burst() {
        let limiter = RateLimiter::default();
        assert!(limiter.check("a", 1.0, 2.0).is_ok());
        assert!(limiter.check("a", 1.0, 2.0).is_ok());
        assert_eq!(limiter.check("a", 1.0, 2.0), Err(1));
        assert!(limiter.check("b", 1.0, 2.0).is_ok(), "clients are separate");
    }
}
