use crate::handlers::OrderOutcomes;
use crate::mailer::Mailer;
use crate::sender::Sender;
use crate::settings::Settings;
use crate::{SERVICE, http};
use messaging::{ConsumerOptions, Runtime, Service};
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations");

/// Migrates, connects, consumes `notifier.inbox`, runs the sender and serves the admin routes.
pub async fn build(
    settings: Settings,
    consumer: ConsumerOptions,
    cancel: CancellationToken,
) -> anyhow::Result<Service> {
    // Configuration mistakes fail here, before anything connects.
    let retry_delays = settings.retry_delays()?;
    let mailer = Arc::new(Mailer::from_settings(&settings)?);
    if let Some(dir) = mailer.mail_dir() {
        tracing::info!(dir = %dir.display(), "no SMTP_URL: emails are written as .eml files");
    }
    let mut runtime = Runtime::start(SERVICE, &settings.common, MIGRATIONS, cancel.clone()).await?;
    let wake = Arc::new(Notify::new());
    runtime.consume(Arc::new(OrderOutcomes { wake: wake.clone() }), consumer);
    let sender = Sender {
        pool: runtime.pool.clone(),
        mailer,
        retry_delays,
        wake,
    };
    runtime.spawn(sender.run(cancel));
    let pool = runtime.pool.clone();
    runtime.serve(&settings.common, move |cfg| http::routes(cfg, pool.clone()))
}
