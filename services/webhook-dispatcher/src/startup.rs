use crate::handlers::WebhookEvents;
use crate::http::AppState;
use crate::settings::Settings;
use crate::worker::Worker;
use crate::{SERVICE, http};
use actix_web::web;
use messaging::{ConsumerOptions, Runtime, Service};
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
    let mut runtime = Runtime::start(SERVICE, &settings.common, MIGRATIONS, cancel.clone()).await?;
    let wake = Arc::new(Notify::new());
    runtime.consume(Arc::new(WebhookEvents::new(wake.clone())), consumer);
    let worker = Worker::new(runtime.pool.clone(), &settings, wake.clone(), cancel)?;
    runtime.spawn(worker.run());
    let state = web::Data::new(AppState { pool: runtime.http_pool.clone(), guard: settings.guard()?, wake });
    runtime.serve(&settings.common, move |cfg| http::routes(cfg, state.clone()))
}
