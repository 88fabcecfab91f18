use crate::handlers::PaymentRequests;
use crate::settings::Settings;
use crate::{SERVICE, http};
use actix_web::dev::Server;
use messaging::{ConsumerOptions, Runtime};
use platform::http::HttpSettings;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub const MIGRATIONS: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("migrations");

pub struct Application {
    pub port: u16,
    server: Server,
    runtime: Runtime,
}

impl Application {
    pub async fn build(settings: Settings, consumer: ConsumerOptions, cancel: CancellationToken) -> anyhow::Result<Self> {
        let mut runtime = Runtime::start(SERVICE, &settings.common, MIGRATIONS, cancel.clone()).await?;
        runtime.consume(Arc::new(PaymentRequests), consumer);
        let (listener, port) = platform::http::bind(&settings.common.http_addr)?;
        let pool = runtime.pool.clone();
        let server = platform::http::serve(
            HttpSettings { listener, body_limit_bytes: settings.common.http_body_limit_bytes, workers: settings.common.http_workers },
            runtime.readiness(),
            cancel,
            move |cfg| http::routes(cfg, pool.clone()),
        )?;
        tracing::info!(port, "payment listening");
        Ok(Self { port, server, runtime })
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.server.await?;
        self.runtime.join().await;
        Ok(())
    }
}

pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let pool = platform::db::pool(settings.common.database_url.expose(), 2)?;
    platform::db::migrate(&pool, platform::db::lock_key(SERVICE), vec![messaging::MIGRATIONS, MIGRATIONS]).await?;
    Ok(())
}
