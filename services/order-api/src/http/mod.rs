//! The public gateway, `/api/v1`: order routes served here, product and webhook-endpoint routes
//! forwarded to the services that own them.

mod forward;
mod order_routes;

use crate::settings::Settings;
use actix_web::web;
use platform::db::PgPool;

pub use forward::Upstreams;

pub fn routes(cfg: &mut web::ServiceConfig, pool: PgPool, settings: &Settings, upstreams: Upstreams) {
    cfg.app_data(web::Data::new(pool))
        .app_data(web::Data::new(order_routes::limits(settings)))
        .app_data(web::Data::new(upstreams))
        .service(
            web::scope("/api/v1")
                .route("/orders", web::post().to(order_routes::create))
                .route("/orders", web::get().to(order_routes::list))
                .route("/orders/{id}", web::get().to(order_routes::get))
                .route("/products", web::to(forward::products))
                .route("/products/{tail:.*}", web::to(forward::products))
                .route("/orders/{id}/payment", web::get().to(forward::payments))
                .route("/payments/{tail:.*}", web::to(forward::payments))
                .route("/notifications", web::to(forward::notifications))
                .route("/notifications/{tail:.*}", web::to(forward::notifications))
                .route("/webhook-endpoints", web::to(forward::webhook_endpoints))
                .route(
                    "/webhook-endpoints/{tail:.*}",
                    web::to(forward::webhook_endpoints),
                )
                .route(
                    "/webhook-deliveries/{tail:.*}",
                    web::to(forward::webhook_endpoints),
                ),
        );
}
