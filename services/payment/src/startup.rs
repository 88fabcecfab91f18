use crate::handlers::PaymentRequests;
use crate::settings::Settings;
use crate::{SERVICE, http};
use messaging::{ConsumerOptions, Runtime, Service};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations");

/// Migrates, connects, starts consuming `payment.inbox` and serves the payment views.
pub async fn build(
    settings: Settings,
    consumer: ConsumerOptions,
    cancel: CancellationToken,
) -> anyhow::Result<Service> {
    let mut runtime = Runtime::start(SERVICE, &settings.common, MIGRATIONS, cancel).await?;
    runtime.consume(Arc::new(PaymentRequests), consumer);
    let pool = runtime.pool.clone();
    runtime.serve(&settings.common, move |cfg| http::routes(cfg, pool.clone()))
}
