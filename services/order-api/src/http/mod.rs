//! The public gateway, `/api/v1`: order routes served here, product and webhook-endpoint routes
//! forwarded to the services that own them.

mod admin_routes;
mod auth_routes;
pub mod client;
mod forward;
pub mod guards;
mod live_routes;
pub mod openapi;
mod openapi_images;
mod order_routes;
mod problems;
mod session_routes;
mod upload;

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
    live: web::Data<crate::live::Hub>,
) {
    let payment_simulator = settings.payment_simulator_enabled;
    let upload_limit = upload::upload_limit(settings.product_image_max_bytes);
    cfg.app_data(web::Data::new(pool))
        .app_data(limiter)
        .app_data(web::Data::new(guards::GuardSettings {
            json_max_depth: settings.json_max_depth,
            upload_limit_bytes: upload::upload_limit(settings.product_image_max_bytes),
            idempotency_in_flight_timeout: std::time::Duration::from_millis(
                settings.idempotency_in_flight_timeout_ms,
            ),
        }))
        // Validated at start-up (`Settings::validate`), so nothing is dropped here.
        .app_data(web::Data::new(client::TrustedProxies(settings.trusted_proxy_list().unwrap_or_default())))
        .app_data(web::Data::new(crate::accounts::backoff::LoginPolicy {
            free_per_account: settings.login_free_attempts_per_account,
            free_per_client: settings.login_free_attempts_per_client,
            max_backoff_seconds: settings.login_backoff_max_seconds,
        }))
        .app_data(web::Data::new(order_routes::policy(settings)))
        .app_data(web::Data::new(settings.account_policy()))
        .app_data(web::Data::new(upstreams))
        .app_data(web::Data::new(dead_letters))
        .app_data(live)
        .app_data(web::Data::new(admin_routes::AdminPolicy {
            stuck_order_after_seconds: settings.stuck_order_after_seconds,
        }))
        .route("/.well-known/jwks.json", web::get().to(session_routes::jwks))
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
                // Innermost: a path that walks out of its route is refused before any handler.
                .wrap(from_fn(forward::refuse_dot_segments))
                .wrap(from_fn(guards::bodies))
                .wrap(from_fn(guards::rate_limit))
                .wrap(guards::cors(&guards::origin_list(&settings.cors_allowed_origins).unwrap_or_default()))
                // Outermost: every guard and handler sees the same client address.
                .wrap(from_fn(client::resolve))
                .route("/auth/register", web::post().to(auth_routes::register))
                .route("/auth/login", web::post().to(auth_routes::login))
                .route("/auth/me", web::get().to(auth_routes::me))
                .route("/auth/verify", web::post().to(auth_routes::verify))
                .route("/auth/password-reset", web::post().to(auth_routes::request_reset))
                .route("/auth/password-reset/confirm", web::post().to(auth_routes::confirm_reset))
                .route("/auth/logout", web::post().to(session_routes::logout))
                .route("/auth/password", web::post().to(session_routes::change_password))
                .route("/orders", web::post().to(order_routes::create))
                .route("/orders", web::get().to(order_routes::list))
                // Before `/orders/{id}`, which would otherwise take `events` for an id.
                .route("/orders/events", web::get().to(live_routes::all_events))
                .route("/orders/{id}", web::get().to(order_routes::get))
                .route("/orders/{id}/events", web::get().to(live_routes::order_events))
                .route("/orders/{id}/cancel", web::post().to(order_routes::cancel))
                .route("/orders/{id}/status", web::post().to(order_routes::set_status))
                // Products, payments, notifications, webhook endpoints and deliveries: an
                // allow-list of routes with typed parameters (forward.rs).
                .configure(|cfg| forward::routes(cfg, payment_simulator, upload_limit))
                .route("/admin/dead-letters", web::get().to(admin_routes::list_dead_letters))
                .route("/admin/dead-letters/replay", web::post().to(admin_routes::replay_dead_letters))
                .route("/admin/dead-letters/purge", web::post().to(admin_routes::purge_dead_letters))
                .route("/admin/stuck-orders", web::get().to(admin_routes::stuck_orders))
                .route("/admin/orders/{id}/redrive", web::post().to(admin_routes::redrive))
                .route("/admin/orders/{id}/fail", web::post().to(admin_routes::fail)),
        );
}
