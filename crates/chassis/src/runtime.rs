//! Wiring every service repeats: the pools and migrations, the broker, the outbox relay,
//! consumers and background workers, the HTTP server, all stopped by one token.

use crate::settings::CommonSettings;
use actix_web::dev::Server;
use actix_web::web;
use diesel_migrations::EmbeddedMigrations;
use messaging::consumer::{self, Batching, ConsumerOptions, EventHandler};
use messaging::relay::{self, RelayOptions};
use messaging::topology::binding_drift;
use messaging::{Broker, BrokerConfig, Participant, Topology};
use platform::auth::TokenKeys;
use platform::db::{self, PgPool};
use platform::http::{Check, HttpSettings, Readiness};
use std::future::Future;
use std::sync::Arc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub struct Runtime {
    pub service: &'static str,
    /// What the service publishes and handles; its queue is declared (and bound) from this.
    pub participant: Participant,
    pub tokens: TokenKeys,
    /// For consumers, the relay and background workers (all on the main runtime).
    pub pool: PgPool,
    /// For HTTP handlers only. diesel-async drives each connection on the runtime that opened
    /// it, and every actix worker has its own runtime that ends when the server stops: a
    /// connection opened by a handler dies with its worker. Sharing one pool let the relay and
    /// consumers pick up such connections while the server was stopping ("connection closed"
    /// after a publish, so a batch went out twice). Two pools keep the lifetimes apart.
    pub http_pool: PgPool,
    pub broker: Broker,
    pub cancel: CancellationToken,
    /// How consumers group deliveries, from the settings.
    batching: Batching,
    tasks: JoinSet<()>,
    /// The relay and the broker connection outlive `cancel`: on shutdown, HTTP and consumers
    /// stop first, then the relay flushes what they committed, then the connection closes.
    relay: tokio::task::JoinHandle<()>,
    relay_cancel: CancellationToken,
    broker_cancel: CancellationToken,
}

impl Runtime {
    /// Connects the pool, migrates (outbox/inbox first, then the service's own), starts the
    /// broker supervisor and the outbox relay.
    pub async fn start(
        participant: Participant,
        settings: &CommonSettings,
        migrations: EmbeddedMigrations,
        cancel: CancellationToken,
    ) -> anyhow::Result<Self> {
        let service = participant.service;
        settings.validate()?;
        let tokens = settings.token_keys(service)?;
        let (relay_cancel, broker_cancel) = (CancellationToken::new(), CancellationToken::new());
        let pool = db::pool(settings.database_url.expose(), settings.db_pool_size)?;
        let http_pool = db::pool(settings.database_url.expose(), settings.db_pool_size)?;
        db::migrate(&pool, db::lock_key(service), vec![messaging::MIGRATIONS, migrations]).await?;
        let broker = Broker::start(
            BrokerConfig {
                url: settings.amqp_url.clone(),
                connection_name: service.to_owned(),
                // Its own part only: its broker user may configure nothing else.
                topology: Topology { participants: vec![participant], ..settings.topology()? },
            },
            broker_cancel.clone(),
        );
        let mut tasks = JoinSet::new();
        let (relay_batch, relay_linger) = settings.relay_batching();
        let relay_options = RelayOptions {
            service,
            batch_size: relay_batch,
            linger: relay_linger,
            drain_timeout: std::time::Duration::from_secs(settings.shutdown_timeout_seconds),
            ..RelayOptions::default()
        };
        let relay =
            tokio::spawn(relay::run(pool.clone(), broker.clone(), relay_options, relay_cancel.clone()));
        tasks.spawn(report_pool(service, pool.clone(), cancel.clone()));
        let retention = settings.inbox_retention();
        tasks.spawn(prune_inbox(service, pool.clone(), retention, cancel.clone()));
        Ok(Self {
            service,
            participant,
            tokens,
            pool,
            http_pool,
            broker,
            cancel,
            batching: settings.consumer_batching(),
            tasks,
            relay,
            relay_cancel,
            broker_cancel,
        })
    }

    /// Consumes the service's inbox with `handler`, which must be the one its participant
    /// declares (the queue was bound to the participant's `handles` at start-up).
    pub fn consume<H: EventHandler>(
        &mut self,
        handler: Arc<H>,
        options: ConsumerOptions,
    ) -> anyhow::Result<()> {
        if let Some(drift) = binding_drift(self.service, self.participant.handles, H::HANDLES) {
            anyhow::bail!("the handler is not the one the service declares: {drift}");
        }
        self.tasks.spawn(consumer::run(
            self.broker.clone(),
            self.pool.clone(),
            handler,
            options,
            self.batching,
            self.cancel.clone(),
        ));
        Ok(())
    }

    /// Runs a background worker until it returns (it must watch `self.cancel`).
    pub fn spawn(&mut self, worker: impl Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(worker);
    }

    /// Ready when the database answers and the broker connection is up.
    /// Checked from HTTP handlers, so it uses the HTTP pool.
    pub fn readiness(&self) -> Readiness {
        let (pool, broker) = (self.http_pool.clone(), self.broker.clone());
        Arc::new(move || {
            let (pool, broker) = (pool.clone(), broker.clone());
            Box::pin(async move {
                vec![
                    Check { name: "database", ok: db::ping(&pool).await },
                    Check { name: "broker", ok: broker.is_connected() },
                ]
            })
        })
    }

    /// After cancellation: waits for consumers and workers to finish their batch in hand, then
    /// lets the relay flush the outbox (within the shutdown timeout), then closes the broker
    /// connection. Everything committed before the stop is published before the process exits.
    pub async fn join(mut self) {
        while self.tasks.join_next().await.is_some() {}
        self.relay_cancel.cancel();
        let _ = self.relay.await;
        self.broker_cancel.cancel();
    }

    /// Binds the HTTP server (health, metrics and the service's `routes`) and returns the
    /// running service.
    pub fn serve<F>(self, settings: &CommonSettings, routes: F) -> anyhow::Result<Service>
    where
        F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
    {
        let (listener, port) = platform::http::bind(&settings.http_addr)?;
        let http = HttpSettings {
            service: self.service,
            listener,
            body_limit_bytes: settings.http_body_limit_bytes,
            workers: settings.http_workers,
            shutdown_timeout_seconds: settings.shutdown_timeout_seconds,
        };
        let tokens = web::Data::new(self.tokens.clone());
        let with_tokens = move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(tokens.clone());
            routes(cfg);
        };
        let server = platform::http::serve(http, self.readiness(), self.cancel.clone(), with_tokens)?;
        tracing::info!(service = self.service, port, "listening");
        Ok(Service { port, server, runtime: self })
    }
}

/// A started service: its HTTP server and background tasks, until the cancellation token fires.
pub struct Service {
    /// The bound port (tests bind port 0 and read it here).
    pub port: u16,
    server: Server,
    runtime: Runtime,
}

impl Service {
    /// Serves until cancelled, then lets consumers, workers and the relay drain.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.server.await?;
        self.runtime.join().await;
        Ok(())
    }
}

/// `db_pool_connections{service,state}`: connections in use, idle, and the pool's maximum,
/// every few seconds (a pool always at its maximum with waiters means requests queue for it).
async fn report_pool(service: &'static str, pool: PgPool, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => return,
        }
        let status = pool.status();
        let in_use = status.size.saturating_sub(status.available);
        for (state, value) in [("in_use", in_use), ("idle", status.available), ("max", status.max_size)] {
            metrics::gauge!("db_pool_connections", "service" => service, "state" => state).set(value as f64);
        }
    }
}

/// How often the inbox is pruned (each run is bounded: `messaging::inbox::prune_once`).
const PRUNE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(300);

/// `inbox_rows_pruned_total{service}`: the inbox pruning job, once shortly after start, then
/// every [`PRUNE_INTERVAL`].
async fn prune_inbox(
    service: &'static str,
    pool: PgPool,
    retention: std::time::Duration,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(PRUNE_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => return,
        }
        match messaging::inbox::prune_once(&pool, retention).await {
            Ok(0) => {}
            Ok(pruned) => {
                tracing::info!(service, pruned, "pruned handled events from the inbox");
                metrics::counter!("inbox_rows_pruned_total", "service" => service).increment(pruned as u64);
            }
            Err(error) => tracing::warn!(service, %error, "cannot prune the inbox; will try again"),
        }
    }
}

/// Applies pending migrations (messaging tables, then the service's own) and returns.
pub async fn migrate(
    service: &'static str,
    settings: &CommonSettings,
    migrations: EmbeddedMigrations,
) -> anyhow::Result<()> {
    let pool = db::pool(settings.database_url.expose(), 2)?;
    db::migrate(&pool, db::lock_key(service), vec![messaging::MIGRATIONS, migrations]).await?;
    Ok(())
}
