use crate::http;
use crate::http::Upstreams;
use crate::saga::OrderSaga;
use crate::settings::Settings;
use chassis::{Runtime, Service};
use messaging::ConsumerOptions;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations");

/// Migrates, connects, runs the saga on `order-api.inbox` and serves the public API.
pub async fn build(
    settings: Settings,
    consumer: ConsumerOptions,
    cancel: CancellationToken,
) -> anyhow::Result<Service> {
    Ok(build_gateway(settings, consumer, cancel).await?.service)
}

/// The running gateway and the port of its metrics listener.
pub struct Gateway {
    pub service: Service,
    /// `/metrics` is served here only (`METRICS_ADDR`), never on the public port.
    pub metrics_port: u16,
}

/// `build`, also reporting the metrics port (tests bind port 0).
pub async fn build_gateway(
    settings: Settings,
    consumer: ConsumerOptions,
    cancel: CancellationToken,
) -> anyhow::Result<Gateway> {
    settings.validate()?;
    let upstreams = Upstreams {
        client: reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.upstream_timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()?,
        inventory: settings.inventory_url.clone(),
        payment: settings.payment_url.clone(),
        notifier: settings.notifier_url.clone(),
        webhooks: settings.webhooks_url.clone(),
    };
    let mut runtime = Runtime::start(crate::BUS, &settings.common, MIGRATIONS, cancel).await?;
    runtime.tokens.internal_ttl_seconds = settings.jwt_internal_ttl_seconds;
    bootstrap_admin(&runtime, &settings).await?;
    runtime.consume(Arc::new(OrderSaga { public_base_url: settings.public_base_url.clone() }), consumer)?;
    runtime.spawn(crate::maintenance::run(runtime.pool.clone(), runtime.cancel.clone()));
    let metrics_port = serve_metrics(&settings.metrics_addr, runtime.cancel.clone())?;
    runtime.spawn(crate::order_metrics::report(runtime.pool.clone(), runtime.cancel.clone()));
    runtime.spawn(crate::accounts::sessions::refresh_revocations(
        runtime.pool.clone(),
        runtime.tokens.revocations().clone(),
        runtime.tokens.ttl_seconds,
        runtime.cancel.clone(),
    ));
    let pool = runtime.http_pool.clone();
    let dead_letters = crate::dead_letters::DeadLetters::new(runtime.broker.clone());
    let common = settings.common.clone();
    // One limiter for all HTTP workers of this process.
    let limiter = actix_web::web::Data::new(http::guards::RateLimiter::new(
        settings.rate_limit_per_second,
        settings.rate_limit_burst,
    ));
    // Live order updates: one listener per replica, fanned out to this replica's streams,
    // which end when the service drains.
    let live = crate::live::Hub::new(settings.live_policy(), runtime.cancel.clone());
    runtime.spawn(crate::live::listener::run(runtime.pool.clone(), live.clone(), runtime.cancel.clone()));
    let live = actix_web::web::Data::from(live);
    let service = runtime.serve(&common, move |cfg| {
        // The public listener answers /metrics with "no such route"; it lives on its own port.
        cfg.app_data(platform::http::MetricsElsewhere);
        let (dead_letters, live) = (dead_letters.clone(), live.clone());
        http::routes(cfg, pool.clone(), &settings, upstreams.clone(), limiter.clone(), dead_letters, live)
    })?;
    Ok(Gateway { service, metrics_port })
}

/// `/metrics` on a listener of its own (`METRICS_ADDR`, 127.0.0.1 by default): the gateway's
/// public port must not hand its internals (routes, volumes, queue names) to the internet.
/// Prometheus scrapes this port from inside the network; nothing routes to it from outside.
fn serve_metrics(addr: &str, cancel: CancellationToken) -> anyhow::Result<u16> {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let (listener, port) = platform::http::bind(addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on METRICS_ADDR `{addr}`: {e}"))?;
    let metrics = platform::http::metrics_handle();
    let server = HttpServer::new(move || {
        let metrics = metrics.clone();
        App::new().route(
            "/metrics",
            web::get().to(move || {
                let body = metrics.render();
                async move { HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body) }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    tokio::spawn(async move {
        cancel.cancelled().await;
        handle.stop(true).await;
    });
    tokio::spawn(server);
    tracing::info!(port, "metrics listening");
    Ok(port)
}

/// Creates the first admin from `BOOTSTRAP_ADMIN_EMAIL` / `BOOTSTRAP_ADMIN_PASSWORD` when both
/// are set and no account has that email. An existing account is left exactly as it is.
async fn bootstrap_admin(runtime: &Runtime, settings: &Settings) -> anyhow::Result<()> {
    let (Some(email), Some(password)) = (&settings.bootstrap_admin_email, &settings.bootstrap_admin_password)
    else {
        return Ok(());
    };
    let mut conn = runtime.pool.get().await?;
    match crate::accounts::ensure_admin(&mut conn, email, password.expose(), "Administrator").await {
        Ok(true) => tracing::info!(%email, "created the bootstrap admin"),
        Ok(false) => tracing::debug!(%email, "bootstrap admin already exists; left unchanged"),
        Err(crate::accounts::AccountError::Invalid(errors)) => {
            // Named as the operator sets them (`BOOTSTRAP_ADMIN_PASSWORD`), so the one error line
            // says which setting to change.
            let reasons: Vec<String> = errors
                .iter()
                .map(|e| format!("BOOTSTRAP_ADMIN_{} {}", e.field.to_uppercase(), e.message))
                .collect();
            anyhow::bail!("{} (change it and start again)", reasons.join("; "));
        }
        Err(error) => return Err(error.into()),
    }
    Ok(())
}
