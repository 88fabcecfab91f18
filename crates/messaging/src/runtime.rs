//! Wiring every service repeats: settings shared by all, the pool and migrations, the broker,
//! the outbox relay, consumers and background workers, all stopped by one token.

use crate::broker::{Broker, BrokerConfig, QueueType};
use crate::consumer::{self, ConsumerOptions, EventHandler};
use crate::relay::{self, RelayOptions};
use crate::topology::Topology;
use actix_web::dev::Server;
use actix_web::web;
use diesel_migrations::EmbeddedMigrations;
use platform::auth::{KeySettings, TokenKeys, TokenPolicy};
use platform::db::{self, PgPool};
use platform::http::{Check, HttpSettings, Readiness};
use platform::settings::{Secret, SettingsError};
use platform::telemetry::LogFormat;
use serde::Deserialize;
use std::future::Future;
use std::sync::Arc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The one service that signs bearer tokens (the public gateway).
pub const ISSUING_SERVICE: &str = "order-api";

/// Settings every service reads (design §7), filled from `DATABASE_URL`, `AMQP_URL`, ...
#[derive(Debug, Clone, Deserialize)]
pub struct CommonSettings {
    pub database_url: Secret,
    pub amqp_url: Secret,
    pub http_addr: String,
    #[serde(default)]
    pub log_format: LogFormat,
    pub db_pool_size: usize,
    pub http_workers: usize,
    pub http_body_limit_bytes: usize,
    pub amqp_queue_type: QueueType,
    /// Comma-separated milliseconds, one retry queue per entry. Every service of a deployment
    /// must use the same list (they all declare the same queues).
    #[serde(deserialize_with = "platform::settings::string_or_number")]
    pub amqp_retry_delays_ms: String,
    /// The gateway's Ed25519 private key (PKCS#8 PEM). Only order-api may have it: any other
    /// service refuses to start with it set. Unset on every service: the local key pair in
    /// `jwt_key_dir`, created on first start, which is what a one-machine set-up wants.
    #[serde(default)]
    pub jwt_signing_key: Option<Secret>,
    /// The public keys tokens are verified with, as a JWK set (`{"keys":[...]}`, what the
    /// gateway serves at `/.well-known/jwks.json`); two keys during a rollover. On the gateway,
    /// keys accepted besides its own signing key.
    #[serde(default)]
    pub jwt_public_keys: Option<String>,
    pub jwt_key_dir: String,
    /// Checked on every token (`iss`, `aud`): a token for another deployment is refused even
    /// if it was signed by a key this one trusts.
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub jwt_ttl_seconds: i64,
    /// How long a stopping service may take to finish in-flight requests and flush its outbox.
    pub shutdown_timeout_seconds: u64,
    /// How long a handled event's inbox row is kept (and so how long a redelivery or a replayed
    /// dead letter is still recognised as a duplicate); older rows are pruned in the
    /// background. Published outbox rows need no setting: the relay deletes each row as soon
    /// as RabbitMQ confirms it.
    pub inbox_retention_hours: u64,
}

impl CommonSettings {
    /// Defaults that run on one machine; `http_addr` and the database role are per service.
    pub fn defaults(db_role: &'static str, port: u16) -> Vec<(&'static str, String)> {
        vec![
            ("database_url", format!("postgres://{db_role}@127.0.0.1:5432/orders")),
            ("amqp_url", "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()),
            ("http_addr", format!("127.0.0.1:{port}")),
            ("log_format", "pretty".to_owned()),
            ("db_pool_size", "16".to_owned()),
            ("http_workers", "2".to_owned()),
            ("http_body_limit_bytes", "65536".to_owned()),
            ("amqp_queue_type", "quorum".to_owned()),
            ("amqp_retry_delays_ms", "1000,10000,60000,300000".to_owned()),
            ("jwt_key_dir", "var/jwt".to_owned()),
            ("jwt_issuer", "order-api".to_owned()),
            ("jwt_audience", "orders".to_owned()),
            ("jwt_ttl_seconds", "3600".to_owned()),
            ("shutdown_timeout_seconds", "15".to_owned()),
            ("inbox_retention_hours", "168".to_owned()),
        ]
    }

    pub fn topology(&self) -> Result<Topology, SettingsError> {
        let retry_delays =
            platform::retry::RetrySchedule::parse("amqp_retry_delays_ms", &self.amqp_retry_delays_ms)?
                .delays()
                .to_vec();
        if retry_delays.is_empty() {
            return Err(SettingsError::Invalid {
                key: "amqp_retry_delays_ms",
                reason: "needs at least one delay".into(),
            });
        }
        Ok(Topology { queue_type: self.amqp_queue_type, retry_delays, service: None })
    }

    /// The token keys of `service`; only [`ISSUING_SERVICE`] gets a signing key.
    pub fn token_keys(&self, service: &str) -> Result<TokenKeys, SettingsError> {
        let key = if self.jwt_signing_key.is_some() { "jwt_signing_key" } else { "jwt_public_keys" };
        if self.jwt_ttl_seconds <= 0 {
            return Err(SettingsError::Invalid { key: "jwt_ttl_seconds", reason: "must be positive".into() });
        }
        for (key, value) in [("jwt_issuer", &self.jwt_issuer), ("jwt_audience", &self.jwt_audience)] {
            if value.trim().is_empty() {
                return Err(SettingsError::Invalid { key, reason: "must not be empty".into() });
            }
        }
        TokenKeys::from_settings(KeySettings {
            service,
            signs: service == ISSUING_SERVICE,
            signing_key: self.jwt_signing_key.as_ref(),
            public_keys: self.jwt_public_keys.as_deref(),
            key_dir: &self.jwt_key_dir,
            policy: TokenPolicy {
                issuer: self.jwt_issuer.clone(),
                audience: self.jwt_audience.clone(),
                ttl_seconds: self.jwt_ttl_seconds,
            },
        })
        .map_err(|error| SettingsError::Invalid { key, reason: error.to_string() })
    }

    /// `inbox_retention_hours` as a duration.
    pub fn inbox_retention(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.inbox_retention_hours.saturating_mul(3600))
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        let topology = self.topology()?;
        let retries: std::time::Duration = topology.retry_delays.iter().sum();
        if self.inbox_retention_hours == 0 || self.inbox_retention() <= retries {
            return Err(SettingsError::Invalid {
                key: "inbox_retention_hours",
                reason: format!(
                    "must outlast the whole retry schedule ({} s) and the time a dead letter may wait \
                     for replay; the default is 168 (a week)",
                    retries.as_secs()
                ),
            });
        }
        if self.db_pool_size < 2 {
            return Err(SettingsError::Invalid {
                key: "db_pool_size",
                reason: "needs at least 2 (the relay listens on one)".into(),
            });
        }
        Ok(())
    }
}

/// Loads a service's settings: `defaults` under the environment and optional `CONFIG_FILE`.
pub fn load_settings<T: serde::de::DeserializeOwned>(
    defaults: &[(&'static str, String)],
) -> Result<T, SettingsError> {
    let pairs: Vec<(&str, &str)> = defaults.iter().map(|(k, v)| (*k, v.as_str())).collect();
    platform::settings::load(&pairs)
}

pub struct Runtime {
    pub service: &'static str,
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
        service: &'static str,
        settings: &CommonSettings,
        migrations: EmbeddedMigrations,
        cancel: CancellationToken,
    ) -> anyhow::Result<Self> {
        settings.validate()?;
        let tokens = settings.token_keys(service)?;
        let (relay_cancel, broker_cancel) = (CancellationToken::new(), CancellationToken::new());
        let pool = db::pool(settings.database_url.expose(), settings.db_pool_size)?;
        let http_pool = db::pool(settings.database_url.expose(), settings.db_pool_size)?;
        db::migrate(&pool, db::lock_key(service), vec![crate::MIGRATIONS, migrations]).await?;
        let broker = Broker::start(
            BrokerConfig {
                url: settings.amqp_url.clone(),
                connection_name: service.to_owned(),
                // Its own part only: its broker user may configure nothing else.
                topology: Topology { service: Some(service.to_owned()), ..settings.topology()? },
            },
            broker_cancel.clone(),
        );
        let mut tasks = JoinSet::new();
        let relay_options = RelayOptions {
            service,
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
            tokens,
            pool,
            http_pool,
            broker,
            cancel,
            tasks,
            relay,
            relay_cancel,
            broker_cancel,
        })
    }

    pub fn consume<H: EventHandler>(&mut self, handler: Arc<H>, options: ConsumerOptions) {
        self.tasks.spawn(consumer::run(
            self.broker.clone(),
            self.pool.clone(),
            handler,
            options,
            self.cancel.clone(),
        ));
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

/// How often the inbox is pruned, and how much one run may delete: bounded work, so a first
/// run on a large backlog takes a few runs instead of one long lock-holding delete.
const PRUNE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(300);
pub const PRUNE_BATCH: i64 = 5_000;
pub const PRUNE_BATCHES_PER_RUN: usize = 10;

/// Deletes inbox rows older than `retention`, at most [`PRUNE_BATCHES_PER_RUN`] batches of
/// [`PRUNE_BATCH`]; returns how many went.
pub async fn prune_inbox_once(pool: &PgPool, retention: std::time::Duration) -> anyhow::Result<usize> {
    let mut conn = pool.get().await?;
    let mut pruned = 0;
    for _ in 0..PRUNE_BATCHES_PER_RUN {
        let deleted = crate::inbox::prune(&mut conn, retention, PRUNE_BATCH).await?;
        pruned += deleted;
        if (deleted as i64) < PRUNE_BATCH {
            break;
        }
    }
    Ok(pruned)
}

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
        match prune_inbox_once(&pool, retention).await {
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
    db::migrate(&pool, db::lock_key(service), vec![crate::MIGRATIONS, migrations]).await?;
    Ok(())
}

/// The `main` of every service: `<service> [serve]` runs it until SIGTERM or Ctrl-C,
/// `<service> migrate` applies migrations and exits.
pub async fn main<S, Fut>(
    service: &'static str,
    about: &'static str,
    load: impl FnOnce() -> Result<S, SettingsError>,
    common: impl Fn(&S) -> &CommonSettings,
    migrations: EmbeddedMigrations,
    build: impl FnOnce(S, ConsumerOptions, CancellationToken) -> Fut,
) -> anyhow::Result<()>
where
    Fut: Future<Output = anyhow::Result<Service>>,
{
    let cli = clap::Command::new(service)
        .about(about)
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand(clap::Command::new("serve").about("Run the service (the default)"))
        .subcommand(clap::Command::new("migrate").about("Apply pending database migrations and exit"))
        .get_matches();
    let settings = load()?;
    if cli.subcommand_name() == Some("migrate") {
        platform::telemetry::init(common(&settings).log_format, "info");
        return migrate(service, common(&settings), migrations).await;
    }
    let endpoint = std::env::var(platform::telemetry::OTLP_ENDPOINT_VAR).ok();
    platform::telemetry::init_with(common(&settings).log_format, "info", service, endpoint.as_deref());
    let cancel = platform::shutdown::on_signal();
    let outcome = build(settings, ConsumerOptions::new(service), cancel).await?.run_until_stopped().await;
    let _ = tokio::task::spawn_blocking(platform::telemetry::shutdown).await;
    outcome
}
