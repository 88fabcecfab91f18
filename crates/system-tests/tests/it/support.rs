//! Starts the whole system for one test and offers the steps scenarios are written in: the
//! system and its options here, starting it in `start`, gateway calls in `requests`, looking
//! into the database and broker and the final check in `inspect`, extra replicas in `replicas`.

use chassis::CommonSettings;
use messaging::{ConsumerOptions, QueueType};
use platform::auth::{Role, Subject, TokenKeys, TokenPolicy};
use platform::settings::Secret;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testkit::{HttpReceiver, SmtpServer, TestDatabase, TestVhost};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

// `System`'s methods, by what a scenario does with them.
mod inspect;
mod replicas;
mod requests;
mod start;

pub const SAGA_TIMEOUT: Duration = Duration::from_secs(60);
/// This test process's token signing key (Ed25519, generated once): the gateway of every
/// system started here signs with it; the other services get only its public half.
pub fn test_signing_key() -> Secret {
    static KEY: std::sync::OnceLock<Secret> = std::sync::OnceLock::new();
    KEY.get_or_init(platform::auth::generate_signing_key_pem).clone()
}

/// The gateway's token keys as the tests' systems use them (`ttl_seconds` for minting).
pub fn test_token_keys(ttl_seconds: i64) -> TokenKeys {
    let signing = platform::auth::SigningKey::from_pem(&test_signing_key()).unwrap();
    let policy = TokenPolicy { issuer: "order-api".into(), audience: "orders".into(), ttl_seconds };
    TokenKeys::issuer(signing, vec![], policy).unwrap()
}

/// The public keys of [`test_signing_key`], as `JWT_PUBLIC_KEYS` carries them.
pub fn test_public_keys() -> String {
    serde_json::to_string(&test_token_keys(60).jwks()).unwrap()
}

/// A token the tests' gateways accept, minted directly (as only the gateway could).
pub fn mint_token(keys: &TokenKeys, id: Uuid, email: &str, name: &str, role: Role) -> String {
    keys.issue(&Subject { id, email, name, role, session_version: 0 }).unwrap()
}
/// What the gateway sends a service on behalf of whoever holds `user_token` (a token the tests'
/// gateways issued): the same claims, signed for the internal audience. For a test that acts as
/// the gateway on a service's own port; a user's own token is refused there.
pub fn as_gateway(user_token: &str) -> String {
    let keys = test_token_keys(60);
    keys.issue_internal(&keys.verify(user_token).unwrap()).unwrap()
}

/// The key the dispatcher seals endpoint secrets with in tests (32 bytes, base64).
pub const TEST_WEBHOOK_SECRET_KEY: &str = "dGVzdC13ZWJob29rLXNlY3JldC1rZXktMzItYnl0ZXM=";
pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

fn changed<T>(change: fn(&mut T), mut value: T) -> T {
    change(&mut value);
    value
}

/// Crash hooks per consumer: set one above zero to make that consumer die between commit and
/// ack that many times.
#[derive(Default, Clone)]
pub struct CrashHooks {
    pub inventory: ConsumerOptionsHook,
    pub payment: ConsumerOptionsHook,
    pub notifier: ConsumerOptionsHook,
    pub webhooks: ConsumerOptionsHook,
}

#[derive(Default, Clone)]
pub struct ConsumerOptionsHook(pub Arc<std::sync::atomic::AtomicUsize>);

impl ConsumerOptionsHook {
    fn options(&self, service: &'static str) -> ConsumerOptions {
        ConsumerOptions { crash_before_ack: self.0.clone(), ..ConsumerOptions::new(service) }
    }
    pub fn crash_times(&self, n: usize) {
        self.0.store(n, std::sync::atomic::Ordering::SeqCst);
    }
}

pub struct System {
    pub db: TestDatabase,
    pub vhost: TestVhost,
    pub gateway: String,
    pub smtp: SmtpServer,
    pub receiver: HttpReceiver,
    pub http: reqwest::Client,
    pub hooks: CrashHooks,
    pub spy: Arc<Mutex<Vec<Vec<u8>>>>,
    /// A bearer token of the bootstrap admin.
    pub admin_token: String,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
    /// The dispatcher's settings (on its bound port), its own token and its index in `tasks`,
    /// so a test can stop and restart it.
    dispatcher: (webhook_dispatcher::settings::Settings, CancellationToken, usize),
    _spy_connection: lapin::Connection,
    _mail_dir: std::path::PathBuf,
    /// Inventory's own base URL (the last instance), for calls that bypass the gateway.
    pub inventory: String,
    /// Base URLs of the services behind the gateway, for calls that bypass it.
    pub notifier: String,
    pub dispatcher_url: String,
    /// The gateway's metrics listener (`METRICS_ADDR`), apart from its public port.
    pub metrics: String,
}

pub struct Options {
    pub inventory_instances: usize,
    /// Requests per second per client at the gateway; 0 (the default in tests) turns it off.
    pub rate_limit_per_second: f64,
    /// How long a payment may wait on the customer (payment's PAYMENT_ACTION_TIMEOUT_MS).
    pub payment_action_timeout_ms: u64,
    /// Changes the gateway's settings before it starts.
    pub gateway: fn(&mut order_api::settings::Settings),
    /// Inventory's product image settings; `None`: a local store in a fresh directory.
    pub images: Option<inventory::images::ImageSettings>,
    /// Inventory's exchange-rate settings; `None`: no source (the rates job is off).
    pub rates: Option<inventory::rates::RateSettings>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            inventory_instances: 1,
            rate_limit_per_second: 0.0,
            payment_action_timeout_ms: 6000,
            gateway: |_| {},
            images: None,
            rates: None,
        }
    }
}

/// Product image settings for a test: a local store in `dir`, small limits.
pub fn local_images(dir: &std::path::Path) -> inventory::images::ImageSettings {
    inventory::images::ImageSettings {
        product_image_max_bytes: 256 * 1024,
        product_image_max_pixels: 4_000_000,
        product_image_thumbnail_px: 64,
        product_image_max_per_product: 5,
        product_image_store: inventory::images::StoreKind::Local,
        product_image_dir: dir.to_string_lossy().into_owned(),
        product_image_s3_bucket: None,
        product_image_s3_endpoint: None,
        product_image_s3_region: "us-east-1".into(),
        product_image_s3_access_key_id: None,
        product_image_s3_secret_access_key: None,
        product_image_s3_path_style: false,
    }
}

/// The settings every service gets in a test: its role on this test's database, this test's
/// vhost, fast retries, small pools.
pub(crate) fn common_settings(db: &TestDatabase, vhost: &TestVhost, role: &str) -> CommonSettings {
    CommonSettings {
        database_url: Secret::new(db.url_for(role)),
        amqp_url: Secret::new(vhost.amqp_url()),
        http_addr: "127.0.0.1:0".into(),
        log_format: platform::telemetry::LogFormat::Pretty,
        db_pool_size: 4,
        http_workers: 1,
        http_body_limit_bytes: 65536,
        amqp_queue_type: QueueType::Quorum,
        amqp_retry_delays_ms: "200,500,1000".into(),
        // Only the gateway holds the private key; the others verify with the public one.
        jwt_signing_key: (role == "order_api").then(test_signing_key),
        jwt_public_keys: (role != "order_api").then(test_public_keys),
        jwt_key_dir: String::new(),
        jwt_issuer: "order-api".into(),
        jwt_audience: "orders".into(),
        jwt_ttl_seconds: 600,
        shutdown_timeout_seconds: 10,
        inbox_retention_hours: 168,
        amqp_consumer_batch: 128,
        amqp_consumer_linger_ms: 5,
        outbox_relay_batch: 500,
        outbox_relay_linger_ms: 5,
    }
}
