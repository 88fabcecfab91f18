use crate::http::Upstreams;
use crate::saga::OrderSaga;
use crate::settings::Settings;
use crate::{SERVICE, http};
use messaging::{ConsumerOptions, Runtime, Service};
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
    let mut runtime = Runtime::start(SERVICE, &settings.common, MIGRATIONS, cancel).await?;
    bootstrap_admin(&runtime, &settings).await?;
    runtime.consume(Arc::new(OrderSaga), consumer);
    runtime.spawn(crate::order_metrics::report(runtime.pool.clone(), runtime.cancel.clone()));
    let pool = runtime.http_pool.clone();
    let dead_letters = crate::dead_letters::DeadLetters { broker: runtime.broker.clone() };
    let common = settings.common.clone();
    // One limiter for all HTTP workers of this process.
    let limiter = actix_web::web::Data::new(http::guards::RateLimiter::default());
    runtime.serve(&common, move |cfg| {
        http::routes(cfg, pool.clone(), &settings, upstreams.clone(), limiter.clone(), dead_letters.clone())
    })
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
            let reasons: Vec<String> = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
            anyhow::bail!("BOOTSTRAP_ADMIN_* is not acceptable: {}", reasons.join("; "));
        }
        Err(error) => return Err(error.into()),
    }
    Ok(())
}
