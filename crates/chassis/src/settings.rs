//! Settings every service reads (design §7), and how a service loads its own on top.

use messaging::consumer::Batching;
use messaging::{QueueType, Topology};
use platform::auth::{KeySettings, TokenKeys, TokenPolicy};
use platform::settings::{Secret, SettingsError};
use platform::telemetry::LogFormat;
use serde::Deserialize;

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
    /// Consumers: the most deliveries applied in one transaction and acked with one `multiple`
    /// ack (the prefetch is twice this). One commit per batch, whatever its size.
    pub amqp_consumer_batch: usize,
    /// Consumers: how long a batch waits for more deliveries after its first (0: only what has
    /// already arrived). The most a lone event is delayed per hop.
    pub amqp_consumer_linger_ms: u64,
    /// The outbox relay: the most events published per confirm round and deleted per statement.
    pub outbox_relay_batch: usize,
    /// The outbox relay: after a commit wakes it, how long it lets more commits arrive before
    /// publishing, so that a burst goes out in one round.
    pub outbox_relay_linger_ms: u64,
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
            ("amqp_consumer_batch", "128".to_owned()),
            ("amqp_consumer_linger_ms", "5".to_owned()),
            ("outbox_relay_batch", "500".to_owned()),
            ("outbox_relay_linger_ms", "5".to_owned()),
        ]
    }

    /// The queue type and retry schedule, for no participant yet (the runtime adds its own).
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
        Ok(Topology { queue_type: self.amqp_queue_type, retry_delays, participants: Vec::new() })
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

    /// How consumers group deliveries (`amqp_consumer_batch`, `amqp_consumer_linger_ms`).
    pub fn consumer_batching(&self) -> Batching {
        Batching {
            size: self.amqp_consumer_batch,
            linger: std::time::Duration::from_millis(self.amqp_consumer_linger_ms),
        }
    }

    /// The outbox relay's batch size and linger (`outbox_relay_batch`, `outbox_relay_linger_ms`).
    pub fn relay_batching(&self) -> (i64, std::time::Duration) {
        let size = i64::try_from(self.outbox_relay_batch).unwrap_or(i64::MAX);
        (size, std::time::Duration::from_millis(self.outbox_relay_linger_ms))
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
        // A batch is one transaction's worth of locks and one prefetch window (twice the
        // consumer batch, which AMQP caps at 65,535); a linger is a delay per hop.
        for (key, size) in [
            ("amqp_consumer_batch", self.amqp_consumer_batch),
            ("outbox_relay_batch", self.outbox_relay_batch),
        ] {
            if !(1..=MAX_BATCH).contains(&size) {
                return Err(SettingsError::Invalid { key, reason: format!("must be 1 to {MAX_BATCH}") });
            }
        }
        for (key, linger) in [
            ("amqp_consumer_linger_ms", self.amqp_consumer_linger_ms),
            ("outbox_relay_linger_ms", self.outbox_relay_linger_ms),
        ] {
            if linger > MAX_LINGER_MS {
                return Err(SettingsError::Invalid { key, reason: format!("must be 0 to {MAX_LINGER_MS}") });
            }
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

/// The largest batch setting accepted.
const MAX_BATCH: usize = 10_000;
/// The longest linger accepted, in milliseconds: each hop of the saga may wait this long.
const MAX_LINGER_MS: u64 = 1_000;

/// Loads a service's settings: `defaults` under the environment and optional `CONFIG_FILE`.
pub fn load_settings<T: serde::de::DeserializeOwned>(
    defaults: &[(&'static str, String)],
) -> Result<T, SettingsError> {
    let pairs: Vec<(&str, &str)> = defaults.iter().map(|(k, v)| (*k, v.as_str())).collect();
    platform::settings::load(&pairs)
}
