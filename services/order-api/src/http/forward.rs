//! Forwarding to the services that own a resource, through an allow-list. Every forwarded route
//! is registered here with typed parameters (ids are UUIDs, provider names and actions are fixed
//! words), and the upstream path is written from those parameters alone, never copied from the
//! request: a path the gateway did not list cannot reach a service, whatever its encoding. Dot
//! segments and encoded slashes are refused before routing with 400, in any encoding.
//!
//! The body is passed through untouched (signed provider callbacks need the raw bytes), with the
//! request id, and the upstream's status and body come back as they are.
//!
//! The caller's own token is never passed on: once the gateway has verified it (revocation
//! included), it signs a token for the internal audience with the same claims, living a minute
//! at most, and sends that. Services accept nothing else, so a revoked session stops working
//! behind the gateway within a minute, and a user's token is worthless on a service's port.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, HttpResponse, ResponseError, Route, web};
use platform::auth::{Claims, MaybeAuthenticated, Role, TokenKeys};
use platform::db::PgPool;
use platform::http::REQUEST_ID_HEADER;
use platform::problem::Problem;
use uuid::Uuid;

#[derive(Clone)]
pub struct Upstreams {
    pub client: reqwest::Client,
    pub inventory: String,
    pub payment: String,
    pub notifier: String,
    pub webhooks: String,
}

/// The service a route is forwarded to.
#[derive(Debug, Clone, Copy)]
enum Upstream {
    Inventory,
    Payment,
    Notifier,
    Webhooks,
}

impl Upstream {
    fn name(self) -> &'static str {
        match self {
            Self::Inventory => "inventory",
            Self::Payment => "payment",
            Self::Notifier => "notifier",
            Self::Webhooks => "webhook-dispatcher",
        }
    }

    fn base(self, upstreams: &Upstreams) -> &str {
        match self {
            Self::Inventory => &upstreams.inventory,
            Self::Payment => &upstreams.payment,
            Self::Notifier => &upstreams.notifier,
            Self::Webhooks => &upstreams.webhooks,
        }
    }
}

/// Who the gateway lets through (the service checks again, with the internal token).
#[derive(Debug, Clone, Copy)]
enum Gate {
    /// Anyone: the catalogue, provider callbacks (their signature is checked by payment), the
    /// simulator (payment checks the order's owner).
    Open,
    Admin,
}

/// The forwarded routes. `simulator`: also the payment simulator's customer actions and its
/// callbacks, only where payment runs the simulator. `upload_limit`: the body limit of an image
/// upload (`upload::upload_limit`).
pub fn routes(cfg: &mut web::ServiceConfig, simulator: bool, upload_limit: usize) {
    use web::{delete, get, patch, post, put};
    let catalog = (Upstream::Inventory, Gate::Open);
    let stock = (Upstream::Inventory, Gate::Admin);
    let payment = (Upstream::Payment, Gate::Open);
    let notifier = (Upstream::Notifier, Gate::Admin);
    let webhooks = (Upstream::Webhooks, Gate::Admin);

    let (products, product) = ("/products", "/products/{id}");
    cfg.service(resource(products).route(fixed(get(), catalog, products)).route(fixed(
        post(),
        stock,
        products,
    )))
    .service(
        resource(product)
            .route(item(get(), catalog, products, ""))
            .route(item(patch(), stock, products, ""))
            .route(item(delete(), stock, products, "")),
    )
    .service(resource("/products/{id}/stock-adjustments").route(item(
        post(),
        stock,
        products,
        "/stock-adjustments",
    )));

    // Product images (inventory checks the file; multipart bodies pass through untouched).
    let images = "/products/{id}/images";
    cfg.service(
        resource(images)
            .app_data(web::PayloadConfig::new(upload_limit))
            .route(item(post(), stock, products, "/images"))
            .route(item(get(), catalog, products, "/images")),
    )
    // Before `{image_id}`, which would otherwise take `order` for an id.
    .service(resource("/products/{id}/images/order").route(item(put(), stock, products, "/images/order")))
    .service(
        resource("/products/{id}/images/{image_id}")
            .route(sub_item(get(), catalog, "/images", ""))
            .route(sub_item(delete(), stock, "/images", "")),
    )
    .service(resource("/products/{id}/images/{image_id}/thumbnail").route(sub_item(
        get(),
        catalog,
        "/images",
        "/thumbnail",
    )));

    // Exchange rates (inventory owns them): the rates held, and an admin's "refresh now".
    let (rates, refresh) = ("/exchange-rates", "/exchange-rates/refresh");
    cfg.service(resource(rates).route(fixed(get(), catalog, rates))).service(resource(refresh).route(fixed(
        post(),
        stock,
        refresh,
    )));

    cfg.service(resource("/orders/{id}/payment").route(get().to(order_payment)));
    let stripe = "/payments/callbacks/stripe";
    cfg.service(resource(stripe).route(fixed(post(), payment, stripe)));
    if simulator {
        let callbacks = "/payments/callbacks/simulated";
        cfg.service(resource(callbacks).route(fixed(post(), payment, callbacks)));
        for action in ["/complete", "/fail"] {
            let path = format!("/payments/simulator/{{id}}{action}");
            cfg.service(resource(&path).route(item(post(), payment, "/payments/simulator", action)));
        }
    }

    let (notifications, retry_failed) = ("/notifications", "/notifications/retry-failed");
    cfg.service(resource(notifications).route(fixed(get(), notifier, notifications)))
        .service(resource(retry_failed).route(fixed(post(), notifier, retry_failed)))
        .service(resource("/notifications/{id}").route(item(get(), notifier, notifications, "")))
        .service(resource("/notifications/{id}/retry").route(item(
            post(),
            notifier,
            notifications,
            "/retry",
        )));

    let (endpoints, deliveries) = ("/webhook-endpoints", "/webhook-deliveries");
    cfg.service(resource(endpoints).route(fixed(get(), webhooks, endpoints)).route(fixed(
        post(),
        webhooks,
        endpoints,
    )))
    .service(
        resource("/webhook-endpoints/{id}")
            .route(item(get(), webhooks, endpoints, ""))
            .route(item(patch(), webhooks, endpoints, ""))
            .route(item(delete(), webhooks, endpoints, "")),
    );
    for (suffix, method) in [("/rotate-secret", post()), ("/deliveries", get()), ("/recover", post())] {
        let path = format!("{endpoints}/{{id}}{suffix}");
        cfg.service(resource(&path).route(item(method, webhooks, endpoints, suffix)));
    }
    cfg.service(resource("/webhook-deliveries/{id}").route(item(get(), webhooks, deliveries, ""))).service(
        resource("/webhook-deliveries/{id}/resend").route(item(post(), webhooks, deliveries, "/resend")),
    );
}

/// A listed path; another method on it is a 405 problem.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(|| async {
        Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed")
            .error_response()
    }))
}

/// A route without parameters, forwarded to the same fixed path.
fn fixed(route: Route, (to, gate): (Upstream, Gate), path: &'static str) -> Route {
    route.to(move |req: HttpRequest, body: web::Bytes, upstreams: web::Data<Upstreams>| async move {
        let bearer = internal_bearer(&req, admit(&req, gate)?.as_ref())?;
        forward(&req, body, &upstreams, to, path.to_owned(), bearer).await
    })
}

/// A route about one item, forwarded to `{collection}/{id}{suffix}` with the id as parsed.
fn item(route: Route, (to, gate): (Upstream, Gate), collection: &'static str, suffix: &'static str) -> Route {
    route.to(
        move |req: HttpRequest, id: web::Path<Uuid>, body: web::Bytes, upstreams: web::Data<Upstreams>| async move {
            let bearer = internal_bearer(&req, admit(&req, gate)?.as_ref())?;
            let path = format!("{collection}/{}{suffix}", id.into_inner());
            forward(&req, body, &upstreams, to, path, bearer).await
        },
    )
}

/// A route about one item of a product, forwarded to `/products/{id}{sub}/{item_id}{suffix}`.
fn sub_item(route: Route, (to, gate): (Upstream, Gate), sub: &'static str, suffix: &'static str) -> Route {
    route.to(
        move |req: HttpRequest,
              ids: web::Path<(Uuid, Uuid)>,
              body: web::Bytes,
              upstreams: web::Data<Upstreams>| async move {
            let bearer = internal_bearer(&req, admit(&req, gate)?.as_ref())?;
            let (id, item) = ids.into_inner();
            forward(&req, body, &upstreams, to, format!("/products/{id}{sub}/{item}{suffix}"), bearer).await
        },
    )
}

/// The caller's verified claims (none for an anonymous caller on an open route); a bad or
/// revoked token is a 401 here, before anything is forwarded.
fn admit(req: &HttpRequest, gate: Gate) -> Result<Option<Claims>, Problem> {
    let caller = platform::auth::caller(req)?;
    match (gate, &caller) {
        (Gate::Open, _) => Ok(caller),
        (Gate::Admin, Some(claims)) if claims.role == Role::Admin => Ok(caller),
        (Gate::Admin, Some(_)) => {
            Err(Problem::new(StatusCode::FORBIDDEN, "forbidden", "This needs the admin role"))
        }
        (Gate::Admin, None) => {
            Err(Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Valid credentials are required"))
        }
    }
}

fn token_keys(req: &HttpRequest) -> Result<&TokenKeys, Problem> {
    req.app_data::<web::Data<TokenKeys>>()
        .map(|keys| keys.get_ref())
        .ok_or_else(|| Problem::internal_message("TokenKeys missing from app data"))
}

/// The internal token sent upstream for `caller` (verified by [`admit`]); none for anonymous.
fn internal_bearer(req: &HttpRequest, caller: Option<&Claims>) -> Result<Option<String>, Problem> {
    let Some(claims) = caller else { return Ok(None) };
    token_keys(req)?.issue_internal(claims).map(Some).map_err(|error| Problem::internal(&error))
}

/// An order's payment, for whoever may read the order: its customer, an admin, or whoever
/// holds a guest order's access token (`?access_token=` or `Order-Access-Token`). Payment checks
/// again: the customer's or admin's internal token, or for a guest one naming this order only.
async fn order_payment(
    req: HttpRequest,
    id: web::Path<Uuid>,
    caller: MaybeAuthenticated,
    query: web::Query<super::order_routes::TokenQuery>,
    pool: web::Data<PgPool>,
    upstreams: web::Data<Upstreams>,
) -> Result<HttpResponse, Problem> {
    use crate::orders::{OrderError, PaymentReader};
    let id = id.into_inner();
    let access_token = super::order_routes::access_token(&req, query.into_inner());
    let mut conn = pool.get().await.map_err(|e| Problem::unavailable(e.to_string()))?;
    let reader = crate::orders::payment_reader(&mut conn, id, caller.0.as_ref(), access_token.as_deref())
        .await
        .map_err(|error| match error {
            OrderError::Db(error) => Problem::internal(&error),
            _ => Problem::not_found("Order"),
        })?;
    drop(conn);
    let bearer = match (reader, &caller.0) {
        (PaymentReader::Caller, Some(claims)) => token_keys(&req)?.issue_internal(claims),
        (PaymentReader::GuestOrder, _) => token_keys(&req)?.issue_guest_internal(id),
        // `payment_reader` lets no anonymous caller read an account's order.
        (PaymentReader::Caller, None) => return Err(Problem::not_found("Order")),
    }
    .map_err(|error| Problem::internal(&error))?;
    let path = format!("/orders/{id}/payment");
    // The access token stays here: the query is not forwarded to payment.
    forward_with(&req, web::Bytes::new(), &upstreams, Upstream::Payment, path, Some(bearer), false).await
}

/// Refuses a path that could walk out of the route it names: `.` or `..` segments and encoded
/// slashes or backslashes, however they are percent-encoded (`%2e%2e`, `%2E.`, `.%2e`,
/// `%252e%252e`, `%2f`, `%5c`). Upstream paths are built from typed parameters anyway; this
/// answers such a probe with a clear 400 instead of whatever route it happens to match.
pub async fn refuse_dot_segments(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if let Some(reason) = walks_out(req.uri().path()) {
        tracing::warn!(path = %req.uri().path(), reason, "refused a path that walks out of its route");
        let problem = Problem::new(StatusCode::BAD_REQUEST, "invalid_path", "The path is not allowed")
            .with_detail(format!("the path has {reason}"));
        return Ok(req.into_response(problem.error_response()));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// How many times a path is percent-decoded in search of a hidden dot segment or slash; a path
/// still encoded after that is refused too.
const DECODE_ROUNDS: usize = 3;

fn walks_out(raw: &str) -> Option<&'static str> {
    let mut current = raw.to_owned();
    for _ in 0..DECODE_ROUNDS {
        let lower = current.to_ascii_lowercase();
        if lower.contains("%2f") || lower.contains("%5c") {
            return Some("an encoded slash");
        }
        if current.split(['/', '\\']).any(|segment| segment == "." || segment == "..") {
            return Some("a dot segment");
        }
        let decoded = percent_decode(&current);
        if decoded == current {
            return None;
        }
        current = decoded;
    }
    Some("too many layers of percent-encoding")
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(high), Some(low)) => {
                // Two hex digits make at most 255.
                out.push(u8::try_from(high * 16 + low).unwrap_or(u8::MAX));
                i += 3;
            }
            (byte, ..) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn forward(
    req: &HttpRequest,
    body: web::Bytes,
    upstreams: &Upstreams,
    to: Upstream,
    path: String,
    bearer: Option<String>,
) -> Result<HttpResponse, Problem> {
    forward_with(req, body, upstreams, to, path, bearer, true).await
}

/// `bearer`: the internal token to send (the caller's `Authorization` never leaves the gateway).
async fn forward_with(
    req: &HttpRequest,
    body: web::Bytes,
    upstreams: &Upstreams,
    to: Upstream,
    path: String,
    bearer: Option<String>,
    with_query: bool,
) -> Result<HttpResponse, Problem> {
    let service = to.name();
    let mut url = format!("{}{path}", to.base(upstreams).trim_end_matches('/'));
    if with_query && !req.query_string().is_empty() {
        url = format!("{url}?{}", req.query_string());
    }
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).map_err(|_| {
        Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed")
    })?;
    let mut outgoing = upstreams.client.request(method, &url).body(body.to_vec());
    for name in ["content-type", "idempotency-key", "stripe-signature"] {
        if let Some(value) = req.headers().get(name).and_then(|v| v.to_str().ok()) {
            outgoing = outgoing.header(name, value);
        }
    }
    if let Some(bearer) = bearer {
        outgoing = outgoing.bearer_auth(bearer);
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
    for name in ["content-type", "location", "retry-after", "cache-control", "x-content-type-options"] {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_and_encoded_slashes_are_found_in_any_encoding() {
        for path in [
            "/api/v1/payments/../orders/x/payment",
            "/api/v1/payments/%2e%2e/orders/x/payment",
            "/api/v1/products/%2E%2E/metrics",
            "/api/v1/products/%2E./metrics",
            "/api/v1/products/.%2e/metrics",
            "/api/v1/products/./x",
            "/api/v1/products/%2e",
            "/api/v1/products/%252e%252e/metrics",
            "/api/v1/products/%25252e%25252e/metrics",
            "/api/v1/products/x%2fy",
            "/api/v1/products/x%2F..%2Fmetrics",
            "/api/v1/products/x%5c..%5cmetrics",
            "/api/v1/products/..\\metrics",
            "/api/v1/products/%252fmetrics",
            "/api/v1/products/..",
        ] {
            assert!(walks_out(path).is_some(), "{path} was let through");
        }
    }

    #[test]
    fn ordinary_paths_pass() {
        for path in [
            "/api/v1/products",
            "/api/v1/products/0190a0b1-7c3e-7000-8000-000000000001",
            "/api/v1/products/0190a0b1-7c3e-7000-8000-000000000001/stock-adjustments",
            "/api/v1/payments/callbacks/stripe",
            "/api/v1/products/a.b",
            "/api/v1/products/...",
            "/api/v1/webhook-endpoints/",
        ] {
            assert_eq!(walks_out(path), None, "{path}");
        }
    }

    /// Where payment runs Stripe, the gateway does not even list the simulator's routes.
    #[actix_web::test]
    async fn the_simulator_routes_are_listed_only_where_the_simulator_runs() {
        use actix_web::test::{TestRequest, call_service, init_service};
        let nowhere = "http://127.0.0.1:9".to_owned();
        let upstreams = Upstreams {
            client: reqwest::Client::new(),
            inventory: nowhere.clone(),
            payment: nowhere.clone(),
            notifier: nowhere.clone(),
            webhooks: nowhere,
        };
        let id = Uuid::now_v7();
        for simulator in [false, true] {
            let app = init_service(
                actix_web::App::new()
                    .app_data(web::Data::new(upstreams.clone()))
                    .service(web::scope("/api/v1").configure(|cfg| routes(cfg, simulator, 1 << 20))),
            )
            .await;
            let status = async |path: &str| {
                call_service(&app, TestRequest::post().uri(path).to_request()).await.status()
            };
            for path in [
                format!("/api/v1/payments/simulator/{id}/complete"),
                format!("/api/v1/payments/simulator/{id}/fail"),
                "/api/v1/payments/callbacks/simulated".to_owned(),
            ] {
                // Listed, it is forwarded (and payment is unreachable here: 503).
                let expected =
                    if simulator { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::NOT_FOUND };
                assert_eq!(status(&path).await, expected, "{path} with the simulator {simulator}");
            }
            assert_eq!(status("/api/v1/payments/callbacks/stripe").await, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(status("/api/v1/payments/callbacks/paypal").await, StatusCode::NOT_FOUND);
        }
    }

    /// The image routes are listed with typed ids (anything else under them is a 404), and only
    /// the upload gets the larger body limit.
    #[actix_web::test]
    async fn image_routes_are_listed_and_only_the_upload_is_an_upload() {
        use actix_web::test::{TestRequest, call_service, init_service};
        let nowhere = "http://127.0.0.1:9".to_owned();
        let upstreams = Upstreams {
            client: reqwest::Client::new(),
            inventory: nowhere.clone(),
            payment: nowhere.clone(),
            notifier: nowhere.clone(),
            webhooks: nowhere,
        };
        let app = init_service(
            actix_web::App::new()
                .app_data(web::Data::new(upstreams))
                .service(web::scope("/api/v1").configure(|cfg| routes(cfg, false, 1 << 20))),
        )
        .await;
        let (product, image) = (Uuid::now_v7(), Uuid::now_v7());
        let base = format!("/api/v1/products/{product}/images");
        for (method, path, status) in [
            ("GET", base.clone(), StatusCode::SERVICE_UNAVAILABLE),
            ("GET", format!("{base}/{image}"), StatusCode::SERVICE_UNAVAILABLE),
            ("GET", format!("{base}/{image}/thumbnail"), StatusCode::SERVICE_UNAVAILABLE),
            ("GET", format!("{base}/{image}/original"), StatusCode::NOT_FOUND),
            ("GET", format!("{base}/not-a-uuid"), StatusCode::NOT_FOUND),
            ("PATCH", format!("{base}/{image}"), StatusCode::METHOD_NOT_ALLOWED),
        ] {
            let request = TestRequest::default().method(method.parse().unwrap_or_default()).uri(&path);
            assert_eq!(call_service(&app, request.to_request()).await.status(), status, "{method} {path}");
        }
        let upload = |method: &str, path: &str| {
            let request = TestRequest::default().method(method.parse().unwrap_or_default()).uri(path);
            super::super::upload::is_upload(&request.to_srv_request())
        };
        assert!(upload("POST", &base));
        assert!(!upload("GET", &base));
        assert!(!upload("POST", "/api/v1/products"));
        assert!(!upload("POST", "/api/v1/products/x/images"));
        assert!(!upload("POST", &format!("{base}/{image}")));
    }

    #[test]
    fn percent_decoding_leaves_broken_escapes_alone() {
        assert_eq!(percent_decode("%2e%2E%41"), "..A");
        assert_eq!(percent_decode("%zz%2"), "%zz%2");
        assert_eq!(percent_decode("%252e"), "%2e");
    }
}
