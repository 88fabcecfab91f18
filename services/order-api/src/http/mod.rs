//! The public gateway, `/api/v1`: order routes served here, product and webhook-endpoint routes
//! forwarded to the services that own them.

mod admin_routes;
mod auth_routes;
mod forward;
pub mod guards;
pub mod openapi;
mod order_routes;

use crate::settings::Settings;
use actix_web::middleware::from_fn;
use actix_web::web;
use platform::db::PgPool;

pub use forward::Upstreams;

pub fn routes(
    cfg: &mut web::ServiceConfig,
    pool: PgPool,
    settings: &Settings,
    upstreams: Upstreams,
    limiter: web::Data<guards::RateLimiter>,
    dead_letters: crate::dead_letters::DeadLetters,
) {
    cfg.app_data(web::Data::new(pool))
        .app_data(limiter)
        .app_data(web::Data::new(guards::GuardSettings {
            cors_origins: settings
                .cors_allowed_origins
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect(),
            rate_per_second: settings.rate_limit_per_second,
            burst: settings.rate_limit_burst,
            json_max_depth: settings.json_max_depth,
        }))
        .app_data(web::Data::new(order_routes::policy(settings)))
        .app_data(web::Data::new(upstreams))
        .app_data(web::Data::new(dead_letters))
        .app_data(web::Data::new(admin_routes::AdminPolicy {
            stuck_order_after_seconds: settings.stuck_order_after_seconds,
        }))
        // Before the /api/v1 scope, which would otherwise claim /api/v1/openapi.json.
        .service(
            utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}")
                .url("/api/v1/openapi.json", openapi::document()),
        )
        .route(
            "/docs",
            web::get().to(|| async {
                actix_web::HttpResponse::PermanentRedirect().insert_header(("Location", "/docs/")).finish()
            }),
        )
        .service(
            web::scope("/api/v1")
                .wrap(from_fn(guards::bodies))
                .wrap(from_fn(guards::rate_limit))
                .wrap(from_fn(guards::cors))
                .route("/auth/register", web::post().to(auth_routes::register))
                .route("/auth/login", web::post().to(auth_routes::login))
                .route("/auth/me", web::get().to(auth_routes::me))
                .route("/orders", web::post().to(order_routes::create))
                .route("/orders", web::get().to(order_routes::list))
                .route("/orders/{id}", web::get().to(order_routes::get))
                .route("/orders/{id}/cancel", web::post().to(order_routes::cancel))
                .route("/orders/{id}/status", web::post().to(order_routes::set_status))
                .route("/products", web::to(forward::products))
                .route("/products/{tail:.*}", web::to(forward::products))
                .route("/orders/{id}/payment", web::get().to(forward::order_payment))
                .route("/payments/{tail:.*}", web::to(forward::payments))
                .route("/notifications", web::to(forward::notifications))
                .route("/notifications/{tail:.*}", web::to(forward::notifications))
                .route("/webhook-endpoints", web::to(forward::webhook_endpoints))
                .route("/webhook-endpoints/{tail:.*}", web::to(forward::webhook_endpoints))
                .route("/webhook-deliveries/{tail:.*}", web::to(forward::webhook_endpoints))
                .route("/admin/dead-letters", web::get().to(admin_routes::list_dead_letters))
                .route("/admin/dead-letters/replay", web::post().to(admin_routes::replay_dead_letters))
                .route("/admin/dead-letters/purge", web::post().to(admin_routes::purge_dead_letters))
                .route("/admin/stuck-orders", web::get().to(admin_routes::stuck_orders))
                .route("/admin/orders/{id}/redrive", web::post().to(admin_routes::redrive))
                .route("/admin/orders/{id}/fail", web::post().to(admin_routes::fail)),
        );
}
