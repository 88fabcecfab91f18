use crate::handlers::OrderEvents;
use crate::http;
use crate::settings::Settings;
use chassis::{Runtime, Service};
use messaging::ConsumerOptions;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations");

/// Migrates, connects, starts consuming `inventory.inbox` and serves the product routes.
pub async fn build(
    settings: Settings,
    consumer: ConsumerOptions,
    cancel: CancellationToken,
) -> anyhow::Result<Service> {
    let mut runtime = Runtime::start(crate::BUS, &settings.common, MIGRATIONS, cancel).await?;
    runtime.consume(Arc::new(OrderEvents), consumer)?;
    let pool = runtime.http_pool.clone();
    runtime.serve(&settings.common, move |cfg| http::routes(cfg, pool.clone()))
}
