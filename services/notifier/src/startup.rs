use crate::channels::Channels;
use crate::handlers::OrderOutcomes;
use crate::http::{self, AdminState};
use crate::settings::Settings;
use crate::summary::SummaryJob;
use crate::worker::Worker;
use chassis::{Runtime, Service};
use messaging::ConsumerOptions;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations");

/// Migrates, connects, consumes `notifier.inbox`, runs the sender and the daily summary, and
/// serves the admin routes.
pub async fn build(
    settings: Settings,
    consumer: ConsumerOptions,
    cancel: CancellationToken,
) -> anyhow::Result<Service> {
    // Configuration mistakes fail here, before anything connects.
    settings.validate()?;
    let retry_delays = settings.retry_delays()?;
    let worker = settings.worker()?;
    let daily_summary = settings.daily_summary()?;
    let channels = Channels::from_settings(&settings)?;
    let mut runtime = Runtime::start(crate::BUS, &settings.common, MIGRATIONS, cancel.clone()).await?;
    let wake = Arc::new(Notify::new());
    runtime.consume(Arc::new(OrderOutcomes { wake: wake.clone() }), consumer)?;
    if let Some(config) = daily_summary {
        let job = SummaryJob::new(runtime.pool.clone(), channels.email.clone(), config);
        runtime.spawn(job.run(cancel.clone()));
    }
    let hooks = Arc::new(Worker { channels, retry_delays });
    runtime.spawn(jobs::Runner::new(hooks, runtime.pool.clone(), worker, wake.clone()).run(cancel));
    let state = AdminState { pool: runtime.http_pool.clone(), wake };
    runtime.serve(&settings.common, move |cfg| http::routes(cfg, state.clone()))
}
