use crate::handlers::WebhookEvents;
use crate::http::AppState;
use crate::secrets::Keyring;
use crate::settings::Settings;
use crate::worker::Worker;
use crate::{http, store};
use actix_web::web;
use chassis::{Runtime, Service};
use messaging::ConsumerOptions;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations");

/// Migrates, connects, consumes `webhook-dispatcher.inbox`, runs the delivery worker and serves
/// the endpoint routes.
pub async fn build(
    settings: Settings,
    consumer: ConsumerOptions,
    cancel: CancellationToken,
) -> anyhow::Result<Service> {
    // Checked before connecting to anything, so a bad schedule fails fast.
    settings.validate()?;
    let keyring = Arc::new(settings.secret_keys()?);
    let mut runtime = Runtime::start(crate::BUS, &settings.common, MIGRATIONS, cancel.clone()).await?;
    seal_stored_secrets(&runtime, &keyring).await?;
    let wake = Arc::new(Notify::new());
    runtime.consume(Arc::new(WebhookEvents::new(wake.clone())), consumer)?;
    let (worker, config) = Worker::new(&settings, keyring.clone(), wake.clone())?;
    runtime
        .spawn(jobs::Runner::new(Arc::new(worker), runtime.pool.clone(), config, wake.clone()).run(cancel));
    runtime.spawn(crate::retention::run(
        runtime.pool.clone(),
        settings.webhook_attempt_retention_days,
        runtime.cancel.clone(),
    ));
    let state =
        web::Data::new(AppState { pool: runtime.http_pool.clone(), guard: settings.guard()?, wake, keyring });
    runtime.serve(&settings.common, move |cfg| http::routes(cfg, state.clone()))
}

/// Before anything is sent: every stored secret sealed under the current key (those stored in
/// plaintext before sealing existed, and those sealed under a rotated-out key). A secret that
/// no configured key opens stops the start, naming the key it needs: running on would fail
/// every delivery to that endpoint.
async fn seal_stored_secrets(runtime: &Runtime, keyring: &Keyring) -> anyhow::Result<()> {
    let mut conn = runtime.pool.get().await?;
    let resealed = store::reseal_secrets(&mut conn, keyring)
        .await
        .map_err(|error| anyhow::anyhow!("cannot seal the stored webhook secrets: {error}"))?;
    if resealed > 0 {
        tracing::info!(
            resealed,
            key_id = keyring.current_id(),
            "webhook endpoint secrets sealed under the current key"
        );
    }
    Ok(())
}
