//! What every public request passes through before its handler: CORS (`actix-cors`), per-client
//! rate limits (`governor`), the JSON depth limit and `Idempotency-Key` replay.

use crate::http::client::ClientAddress;
use crate::idempotency::{self, Begin, StoredResponse};
use actix_cors::Cors;
use actix_web::body::{BoxBody, MessageBody, to_bytes};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, ResponseError, web};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter as KeyedLimiter};
use platform::db::PgPool;
use platform::problem::Problem;
use sha2::{Digest, Sha256};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub struct GuardSettings {
    pub json_max_depth: usize,
    /// The body limit of an image upload (`upload::upload_limit`); every other body has the
    /// JSON limit (`HTTP_BODY_LIMIT_BYTES`).
    pub upload_limit_bytes: usize,
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

/// `CORS_ALLOWED_ORIGINS`, comma-separated: `*` or origins such as `https://shop.example`
/// (scheme, host and optional port, nothing after); `Err` names the bad entry.
pub fn origin_list(raw: &str) -> Result<Vec<String>, String> {
    let origin = |entry: &str| {
        let uri = entry.parse::<actix_web::http::Uri>().ok()?;
        let bare = uri.path_and_query().is_none_or(|p| p.as_str() == "/") && !entry.ends_with('/');
        (uri.scheme().is_some() && uri.authority().is_some() && bare).then(|| entry.to_owned())
    };
    raw.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| match entry {
            "*" => Ok(entry.to_owned()),
            _ => origin(entry).ok_or_else(|| format!("`{entry}` is not an origin like https://shop.example")),
        })
        .collect()
}

/// `origins`: from [`origin_list`]; none: no CORS headers, so
/// browsers allow same-origin calls only. A request from another origin is still served (a
/// browser then hides the answer from the page); only its preflight is refused.
pub fn cors(origins: &[String]) -> Cors {
    let cors = Cors::default()
        .allowed_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("traceparent"),
        ])
        .expose_headers([
            HeaderName::from_static("x-request-id"),
            header::LOCATION,
            header::RETRY_AFTER,
            HeaderName::from_static("idempotent-replayed"),
        ])
        .max_age(600)
        .block_on_origin_mismatch(false);
    origins.iter().fold(cors, |cors, origin| match origin.as_str() {
        "*" => cors.allow_any_origin(),
        exact => cors.allowed_origin(exact),
    })
}

// ---- Rate limiting --------------------------------------------------------------------------

/// A GCRA bucket per client (the account for authenticated calls, the client address otherwise,
/// see `http::client`), in this process: with N gateway replicas a client gets N times the rate.
/// The login backoff, which must hold across replicas, is in PostgreSQL instead.
pub struct RateLimiter {
    /// `None`: rate limiting is off.
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    checks: AtomicU64,
}

/// Clients idle long enough to be back at a full burst are forgotten this often (in checks).
const FORGET_EVERY: u64 = 10_000;

impl RateLimiter {
    /// `rate` requests a second with bursts of `burst`; a rate of 0 (or below) turns it off.
    pub fn new(rate: f64, burst: f64) -> Self {
        let burst = NonZeroU32::new(burst.max(1.0) as u32).unwrap_or(NonZeroU32::MIN);
        let quota = Duration::try_from_secs_f64(1.0 / rate).ok().and_then(Quota::with_period);
        Self {
            limiter: quota.map(|quota| KeyedLimiter::dashmap(quota.allow_burst(burst))),
            checks: AtomicU64::new(0),
        }
    }

    /// Ok, or the whole seconds to wait before the next request would pass.
    pub fn check(&self, client: &str) -> Result<(), u64> {
        let Some(limiter) = &self.limiter else { return Ok(()) };
        if self.checks.fetch_add(1, Ordering::Relaxed) % FORGET_EVERY == FORGET_EVERY - 1 {
            limiter.retain_recent();
        }
        limiter.check_key(&client.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(limiter.clock().now());
            wait.as_secs_f64().ceil().max(1.0) as u64
        })
    }
}

fn client_of(req: &ServiceRequest) -> String {
    match platform::auth::caller(req.request()) {
        Ok(Some(claims)) => format!("user:{}", claims.sub),
        _ => format!("ip:{}", ClientAddress::of(req.request())),
    }
}

pub async fn rate_limit(
    limiter: web::Data<RateLimiter>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if let Err(wait) = limiter.check(&client_of(&req)) {
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
    let upload = super::upload::is_upload(&req);
    let read = match upload {
        true => super::upload::read_upload(&mut req, settings.upload_limit_bytes).await,
        false => req.extract::<web::Bytes>().await.map_err(|error| error.to_string()),
    };
    let body = match read {
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
    // An upload is an image in a multipart form, not JSON: inventory checks it.
    if !upload && json_depth(&body) > settings.json_max_depth {
        let problem =
            Problem::new(StatusCode::BAD_REQUEST, "json_too_deep", "The JSON body is nested too deeply")
                .with_detail(format!("at most {} levels", settings.json_max_depth));
        return Ok(req.into_response(problem_response(problem)));
    }
    // PostgreSQL cannot store U+0000 in text; refuse it here for every service behind us.
    if !upload && body.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
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
    let bytes = to_bytes(response.into_body())
        .await
        .map_err(|_| Problem::internal_message("unreadable response body"))?;
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
    fn origins_are_checked_when_read() {
        let list = origin_list(" https://shop.example, http://127.0.0.1:8080 ,*");
        assert_eq!(list.map(|l| l.len()), Ok(3));
        assert_eq!(origin_list(""), Ok(vec![]));
        for bad in ["shop.example", "https://shop.example/", "https://shop.example/app", "not an origin"] {
            assert!(origin_list(bad).is_err_and(|e| e.contains(bad)), "{bad}");
        }
    }

    #[test]
    fn buckets_refill_at_the_rate_and_cap_at_the_burst() {
        let limiter = RateLimiter::new(1.0, 2.0);
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_ok());
        assert_eq!(limiter.check("a"), Err(1));
        assert!(limiter.check("b").is_ok(), "clients are separate");
        let slow = RateLimiter::new(0.25, 1.0);
        assert!(slow.check("a").is_ok());
        assert_eq!(slow.check("a"), Err(4), "the wait is rounded up to whole seconds");
        let off = RateLimiter::new(0.0, 2.0);
        assert!((0..100).all(|_| off.check("a").is_ok()), "a rate of 0 turns it off");
    }
}
