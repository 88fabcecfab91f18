//! The OpenAPI 3.1 document, generated from the handlers and types (utoipa), served at
//! `/api/v1/openapi.json` and rendered by Swagger UI at `/docs` from assets compiled into the
//! binary (no CDN). Routes the gateway forwards are described here by their contract; a system
//! test checks real responses of those services against these schemas, so they cannot drift.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// RFC 9457 problem details, the shape of every error.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a shape for the document only: utoipa reads its fields, no code does")]
pub struct ProblemDoc {
    /// `/problems/<code>`
    #[schema(rename = "type", example = "/problems/validation_failed")]
    kind: String,
    title: String,
    status: u16,
    /// Stable machine-readable code.
    #[schema(example = "validation_failed")]
    code: String,
    detail: Option<String>,
    /// Field-level messages for validation failures.
    errors: Option<Vec<FieldErrorDoc>>,
    request_id: Option<String>,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "a shape for the document only: utoipa reads its fields, no code does")]
pub struct FieldErrorDoc {
    #[schema(example = "items[0].quantity")]
    field: String,
    message: String,
}

/// A product, owned by `inventory`.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a shape for the document only: utoipa reads its fields, no code does")]
pub struct Product {
    id: uuid::Uuid,
    sku: String,
    name: String,
    description: Option<String>,
    #[schema(example = "999.99")]
    price: String,
    #[schema(example = "USD")]
    currency: String,
    /// Units on hand.
    stock: i64,
    /// On hand minus reserved by open orders.
    available: i64,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
    /// Only when asked with `?currency=`: the price in that currency.
    display_price: Option<DisplayPrice>,
    /// In display order.
    images: Vec<super::openapi_images::ProductImage>,
}

/// A price shown in another currency: `amount` = price × `rate`, rounded half-up to the
/// currency's minor units (JPY, KRW, ISK: none; amounts keep two decimals, `.00`).
#[derive(ToSchema)]
#[expect(dead_code, reason = "a shape for the document only: utoipa reads its fields, no code does")]
pub struct DisplayPrice {
    #[schema(example = "922.33")]
    amount: String,
    #[schema(example = "EUR")]
    currency: String,
    /// One unit of the product's currency in `currency` (`1` when no conversion was needed).
    #[schema(example = "0.9223390518")]
    rate: String,
    /// The publication date of the rates used; null when no conversion was needed.
    rate_date: Option<chrono::NaiveDate>,
}

/// The exchange rates inventory holds (the ECB's daily reference rates), owned by `inventory`.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a shape for the document only: utoipa reads its fields, no code does")]
pub struct ExchangeRates {
    #[schema(example = "EUR")]
    base: String,
    /// Publication date.
    date: chrono::NaiveDate,
    /// Conversions refuse these rates (422 `exchange_rates_stale`) as older than `max_age_days`.
    stale: bool,
    max_age_days: u32,
    rates: Vec<ExchangeRateDoc>,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "a shape for the document only: utoipa reads its fields, no code does")]
pub struct ExchangeRateDoc {
    #[schema(example = "USD")]
    currency: String,
    /// Units of `currency` per one unit of the base.
    #[schema(example = "1.0842")]
    rate: String,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "a shape for the document only: utoipa reads its fields, no code does")]
pub struct NewProduct {
    #[schema(example = "LAPTOP-1")]
    sku: String,
    name: String,
    description: Option<String>,
    #[schema(example = "999.99")]
    price: String,
    #[schema(example = "USD")]
    currency: String,
    #[schema(minimum = 0)]
    stock: i64,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "a shape for the document only: utoipa reads its fields, no code does")]
pub struct ProductPage {
    items: Vec<Product>,
    next_cursor: Option<uuid::Uuid>,
}

/// A webhook endpoint, owned by `webhook-dispatcher`.
#[derive(ToSchema)]
#[expect(dead_code, reason = "a shape for the document only: utoipa reads its fields, no code does")]
pub struct WebhookEndpoint {
    id: uuid::Uuid,
    url: String,
    /// Empty: every webhook event type.
    event_types: Vec<String>,
    description: Option<String>,
    enabled: bool,
    /// `whsec_…`; present only in the answer that created it.
    secret: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(ToSchema)]
#[expect(dead_code, reason = "a shape for the document only: utoipa reads its fields, no code does")]
pub struct NewWebhookEndpoint {
    #[schema(example = "https://shop.example/hooks")]
    url: String,
    #[schema(example = json!(["order.confirmed", "order.failed"]))]
    event_types: Option<Vec<String>>,
    description: Option<String>,
}

mod forwarded {
    #![expect(
        dead_code,
        reason = "these functions only carry the forwarded routes' #[utoipa::path]; nothing calls them"
    )]
    use super::*;

    #[utoipa::path(post, path = "/api/v1/products", tag = "products", request_body = NewProduct,
        responses((status = 201, body = Product), (status = 401, body = ProblemDoc), (status = 403, body = ProblemDoc),
            (status = 409, description = "SKU taken", body = ProblemDoc), (status = 422, body = ProblemDoc)),
        security(("bearer" = [])))]
    fn create_product() {}

    #[utoipa::path(get, path = "/api/v1/products", tag = "products",
        params(("limit" = Option<i64>, Query, description = "1 to 100, default 20"),
            ("starting_after" = Option<uuid::Uuid>, Query, description = "The previous page's next_cursor"),
            ("currency" = Option<String>, Query, description = "Also show each price in this currency (`display_price`)")),
        responses((status = 200, body = ProductPage),
            (status = 422, description = "`currency_not_convertible` (unknown currency), `exchange_rates_stale` (rates older than `RATES_MAX_AGE_DAYS`) or `exchange_rates_unavailable`", body = ProblemDoc)))]
    fn list_products() {}

    #[utoipa::path(get, path = "/api/v1/products/{id}", tag = "products",
        params(("id" = uuid::Uuid, Path),
            ("currency" = Option<String>, Query, description = "Also show the price in this currency (`display_price`)")),
        responses((status = 200, body = Product), (status = 404, body = ProblemDoc),
            (status = 422, description = "As for the list: the price cannot be converted", body = ProblemDoc)))]
    fn get_product() {}

    #[utoipa::path(get, path = "/api/v1/exchange-rates", tag = "products",
        responses((status = 200, body = ExchangeRates),
            (status = 422, description = "No rates loaded yet (`exchange_rates_unavailable`)", body = ProblemDoc)))]
    fn exchange_rates() {}

    #[utoipa::path(post, path = "/api/v1/exchange-rates/refresh", tag = "products",
        description = "Loads the rates from `RATES_SOURCE_URL` now (the daily job does it at `RATES_REFRESH_AT`). Any failure leaves the rates held unchanged.",
        responses((status = 200, body = ExchangeRates),
            (status = 401, body = ProblemDoc), (status = 403, body = ProblemDoc),
            (status = 409, description = "`rates_source_unset`, or `rates_feed_older` than the rates held", body = ProblemDoc),
            (status = 502, description = "`rates_source_unreachable`, or `rates_feed_invalid` (malformed, no date, a rate not positive)", body = ProblemDoc)),
        security(("bearer" = [])))]
    fn refresh_exchange_rates() {}

    #[utoipa::path(patch, path = "/api/v1/products/{id}", tag = "products", params(("id" = uuid::Uuid, Path)),
        request_body(content = serde_json::Value, description = "Any of name, description, price, currency"),
        responses((status = 200, body = Product), (status = 401, body = ProblemDoc), (status = 403, body = ProblemDoc),
            (status = 404, body = ProblemDoc), (status = 422, body = ProblemDoc)),
        security(("bearer" = [])))]
    fn update_product() {}

    #[utoipa::path(delete, path = "/api/v1/products/{id}", tag = "products", params(("id" = uuid::Uuid, Path)),
        responses((status = 204, description = "Soft-deleted: hidden, no longer orderable, SKU kept"),
            (status = 401, body = ProblemDoc), (status = 403, body = ProblemDoc), (status = 404, body = ProblemDoc)),
        security(("bearer" = [])))]
    fn delete_product() {}

    #[utoipa::path(post, path = "/api/v1/products/{id}/stock-adjustments", tag = "products", params(("id" = uuid::Uuid, Path)),
        request_body(content = serde_json::Value,
            description = "`{\"delta\": i64 (non-zero), \"reason\": \"restock\"|\"damaged\"|\"correction\"|\"return\", \"note\"?}`"),
        responses((status = 200, body = Product),
            (status = 409, description = "Would leave less than is reserved (`insufficient_stock`)", body = ProblemDoc),
            (status = 401, body = ProblemDoc), (status = 403, body = ProblemDoc), (status = 422, body = ProblemDoc)),
        security(("bearer" = [])))]
    fn adjust_stock() {}

    #[utoipa::path(get, path = "/api/v1/orders/{id}/payment", tag = "payments",
        description = "For whoever may read the order: its customer, an admin, or with a guest order's access token.",
        params(("id" = uuid::Uuid, Path),
            ("access_token" = Option<String>, Query, description = "A guest order's access token (from `POST /orders` or the invoice link)"),
            ("Order-Access-Token" = Option<String>, Header, description = "A guest order's access token (instead of the query parameter)")),
        responses((status = 200, description = "The payment: status, amount, refunds, attempts, history"),
            (status = 401, description = "An invalid or revoked bearer token", body = ProblemDoc),
            (status = 404, description = "No such order, or not yours (the same answer for both)", body = ProblemDoc)),
        security((), ("bearer" = [])))]
    fn order_payment() {}

    #[utoipa::path(post, path = "/api/v1/payments/callbacks/{provider}", tag = "payments",
        params(("provider" = String, Path,
            description = "`stripe`; `simulated` only where the simulator runs (PAYMENT_SIMULATOR_ENABLED)")),
        request_body(content = serde_json::Value, description = "The provider's signed event (raw body; `Stripe-Signature`)"),
        responses((status = 200, description = "Recorded (duplicates and unknown events are harmless)"),
            (status = 400, description = "Forged, stale or unsigned", body = ProblemDoc),
            (status = 404, description = "Not the provider payment runs", body = ProblemDoc)))]
    fn payment_callback() {}

    #[utoipa::path(post, path = "/api/v1/payments/simulator/{payment_id}/{action}", tag = "payments",
        params(("payment_id" = uuid::Uuid, Path), ("action" = String, Path, description = "`complete` or `fail`")),
        description = "The customer finishes (or abandons) a payment waiting on them at the simulated \
                       provider. Only where the simulator runs (PAYMENT_SIMULATOR_ENABLED; never in production), \
                       and only for the customer who placed the order or an admin.",
        responses((status = 200, description = "The payment after the simulator's signed callback"),
            (status = 401, body = ProblemDoc),
            (status = 404, description = "No such payment, or not yours", body = ProblemDoc),
            (status = 409, description = "Not waiting on the customer (`not_awaiting_action`)", body = ProblemDoc)),
        security(("bearer" = [])))]
    fn simulator_action() {}

    #[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications",
        params(("status" = Option<String>, Query), ("kind" = Option<String>, Query), ("channel" = Option<String>, Query),
            ("order_id" = Option<uuid::Uuid>, Query), ("limit" = Option<i64>, Query), ("cursor" = Option<String>, Query)),
        responses((status = 200, description = "`{items, next_cursor}`"), (status = 401, body = ProblemDoc),
            (status = 403, body = ProblemDoc)),
        security(("bearer" = [])))]
    fn list_notifications() {}

    #[utoipa::path(post, path = "/api/v1/notifications/retry-failed", tag = "notifications",
        request_body(content = serde_json::Value, description = "`{\"since\"?, \"until\"?, \"limit\"? (default 100, max 1000)}`"),
        responses((status = 200, description = "`{\"retried\": n}`"), (status = 401, body = ProblemDoc), (status = 403, body = ProblemDoc)),
        security(("bearer" = [])))]
    fn retry_failed_notifications() {}

    #[utoipa::path(get, path = "/api/v1/webhook-endpoints/{id}/deliveries", tag = "webhooks", params(("id" = uuid::Uuid, Path),
            ("event_id" = Option<uuid::Uuid>, Query), ("status" = Option<String>, Query)),
        responses((status = 200, description = "Deliveries with their attempts"), (status = 401, body = ProblemDoc),
            (status = 403, body = ProblemDoc), (status = 404, body = ProblemDoc)),
        security(("bearer" = [])))]
    fn endpoint_deliveries() {}

    #[utoipa::path(post, path = "/api/v1/webhook-endpoints/{id}/rotate-secret", tag = "webhooks", params(("id" = uuid::Uuid, Path)),
        responses((status = 200, description = "The new secret, shown once; the old one signs too for 24 h", body = WebhookEndpoint),
            (status = 401, body = ProblemDoc), (status = 403, body = ProblemDoc), (status = 404, body = ProblemDoc)),
        security(("bearer" = [])))]
    fn rotate_secret() {}

    #[utoipa::path(post, path = "/api/v1/webhook-deliveries/{id}/resend", tag = "webhooks", params(("id" = uuid::Uuid, Path)),
        responses((status = 202, description = "A fresh attempt is due now"), (status = 401, body = ProblemDoc),
            (status = 403, body = ProblemDoc), (status = 404, body = ProblemDoc)),
        security(("bearer" = [])))]
    fn resend_delivery() {}

    #[utoipa::path(post, path = "/api/v1/webhook-endpoints", tag = "webhooks", request_body = NewWebhookEndpoint,
        responses((status = 201, description = "The signing secret is shown only here", body = WebhookEndpoint),
            (status = 401, body = ProblemDoc), (status = 403, body = ProblemDoc), (status = 422, body = ProblemDoc)),
        security(("bearer" = [])))]
    fn create_webhook_endpoint() {}

    #[utoipa::path(get, path = "/api/v1/webhook-endpoints", tag = "webhooks",
        responses((status = 200, description = "`{items, next_cursor}`, secrets omitted"), (status = 401, body = ProblemDoc),
            (status = 403, body = ProblemDoc)),
        security(("bearer" = [])))]
    fn list_webhook_endpoints() {}
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Orders API",
        description = "The public gateway of the order system. Errors are RFC 9457 `application/problem+json` \
                       with a stable `code`; every response carries `X-Request-Id`; POSTs honour `Idempotency-Key`.",
        license(name = "Apache-2.0")
    ),
    paths(
        super::auth_routes::register, super::auth_routes::login, super::auth_routes::me,
        super::auth_routes::verify, super::auth_routes::request_reset, super::auth_routes::confirm_reset,
        super::session_routes::logout, super::session_routes::change_password,
        super::order_routes::create, super::order_routes::list, super::order_routes::get,
        super::order_routes::cancel, super::order_routes::set_status,
        super::live_routes::order_events, super::live_routes::all_events,
        forwarded::create_product, forwarded::list_products, forwarded::get_product,
        forwarded::update_product, forwarded::delete_product, forwarded::adjust_stock,
        super::openapi_images::upload_image, super::openapi_images::list_images,
        super::openapi_images::reorder_images, super::openapi_images::get_image,
        super::openapi_images::get_thumbnail, super::openapi_images::delete_image,
        forwarded::exchange_rates, forwarded::refresh_exchange_rates,
        forwarded::order_payment, forwarded::payment_callback, forwarded::simulator_action,
        forwarded::list_notifications, forwarded::retry_failed_notifications,
        forwarded::create_webhook_endpoint, forwarded::list_webhook_endpoints,
        forwarded::endpoint_deliveries, forwarded::rotate_secret, forwarded::resend_delivery,
        super::admin_routes::list_dead_letters, super::admin_routes::replay_dead_letters,
        super::admin_routes::purge_dead_letters, super::admin_routes::stuck_orders,
        super::admin_routes::redrive, super::admin_routes::fail,
    ),
    components(schemas(ProblemDoc, FieldErrorDoc, super::live_routes::OrderEventDoc)),
    modifiers(&BearerAuth),
    tags((name = "auth"), (name = "orders"), (name = "products"), (name = "payments"), (name = "notifications"),
        (name = "webhooks"), (name = "operations"))
)]
pub struct ApiDoc;

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[cfg(test)]
mod tests {
    /// `docs/openapi.json` is the committed copy of the generated document; regenerate it with
    /// `UPDATE_OPENAPI=1 cargo test -p order-api openapi`.
    #[test]
    fn the_committed_openapi_document_matches_the_code() {
        let generated = super::document().to_pretty_json().unwrap_or_default() + "\n";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(path, &generated).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json drifted from the code; rerun with UPDATE_OPENAPI=1"
        );
    }

    #[test]
    fn the_document_is_openapi_3_1_with_every_public_route() {
        let doc = serde_json::to_value(super::document()).unwrap_or_default();
        assert!(doc["openapi"].as_str().unwrap_or_default().starts_with("3.1"));
        for path in [
            "/api/v1/orders",
            "/api/v1/orders/{id}",
            "/api/v1/orders/{id}/cancel",
            "/api/v1/auth/login",
            "/api/v1/products",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} missing");
        }
    }
}
