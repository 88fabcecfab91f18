use crate::handlers::OrderEvents;
use crate::http;
use crate::rates::http::RatesConfig;
use crate::rates::job::RatesJob;
use crate::settings::Settings;
use chassis::{Runtime, Service};
use messaging::ConsumerOptions;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations");

/// Migrates, connects, starts consuming `inventory.inbox` and serves the product and image routes.
pub async fn build(
    settings: Settings,
    consumer: ConsumerOptions,
    cancel: CancellationToken,
) -> anyhow::Result<Service> {
    let images = crate::images::Images::from_settings(&settings.images)?;
    let source = settings.rates.source()?;
    let rates = RatesConfig { source: source.clone(), max_age_days: settings.rates.rates_max_age_days };
    let refresh_at = settings.rates.refresh_at()?;
    let mut runtime = Runtime::start(crate::BUS, &settings.common, MIGRATIONS, cancel).await?;
    runtime.consume(Arc::new(OrderEvents), consumer)?;
    if let Some(source) = source {
        let job = RatesJob { pool: runtime.pool.clone(), source, at: refresh_at };
        let cancel = runtime.cancel.clone();
        runtime.spawn(job.run(cancel));
    }
    let pool = runtime.http_pool.clone();
    runtime.serve(&settings.common, move |cfg| {
        http::routes(cfg, pool.clone(), images.clone());
        crate::rates::http::routes(cfg, rates.clone());
    })
}
