//! Starts the whole system for one test and offers the steps scenarios are written in.

use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt;
use invariants::Expectations;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use messaging::{CommonSettings, ConsumerOptions, QueueType};
use platform::auth::{Role, Subject, TokenKeys, TokenPolicy};
use platform::settings::Secret;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testkit::{HttpReceiver, SmtpServer, TestDatabase, TestVhost, eventually};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

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
}

impl Default for Options {
    fn default() -> Self {
        Self {
            inventory_instances: 1,
            rate_limit_per_second: 0.0,
            payment_action_timeout_ms: 6000,
            gateway: |_| {},
        }
    }
}

impl System {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        platform::telemetry::init(platform::telemetry::LogFormat::Pretty, "warn");
        let db = TestDatabase::create().await.expect("test database");
        let vhost = TestVhost::create().await.expect("test vhost (is rabbitmq_management enabled?)");
        // Each service declares only its own queues; load the whole map first, as an operator
        // loads deploy/rabbitmq/definitions.json.
        let topology = common_settings(&db, &vhost, "inventory").topology().unwrap();
        topology.declare_everything(&vhost.amqp_url()).await.expect("topology");
        let smtp = SmtpServer::start().await.expect("smtp server");
        let receiver = HttpReceiver::start().await.expect("webhook receiver");
        let cancel = CancellationToken::new();
        let hooks = CrashHooks::default();
        let common = |role: &str| common_settings(&db, &vhost, role);
        let mut tasks = Vec::new();

        let mut inventory_port = 0;
        for _ in 0..options.inventory_instances {
            let app = inventory::startup::build(
                inventory::settings::Settings { common: common("inventory") },
                hooks.inventory.options(inventory::SERVICE),
                cancel.clone(),
            )
            .await
            .expect("inventory starts");
            inventory_port = app.port;
            tasks.push(tokio::spawn(app.run_until_stopped()));
        }
        let payment = payment::startup::build(
            payment::settings::Settings {
                payment_action_timeout_ms: options.payment_action_timeout_ms,
                ..Self::payment_settings(common("payment"))
            },
            hooks.payment.options(payment::SERVICE),
            cancel.clone(),
        )
        .await
        .expect("payment starts");
        let mail_dir = std::env::temp_dir().join(format!("mail-{}", db.name));
        let notifier = notifier::startup::build(
            notifier::settings::Settings {
                common: common("notifier"),
                smtp_url: Some(Secret::new(smtp.url())),
                mail_dir: mail_dir.to_string_lossy().into_owned(),
                mail_from: "Orders <orders@localhost>".into(),
                notification_retry_delays_ms: "200,400,800".into(),
                sms_provider_url: None,
                sms_provider_token: None,
                daily_summary_at: "07:00".into(),
                daily_summary_recipients: String::new(),
            },
            hooks.notifier.options(notifier::SERVICE),
            cancel.clone(),
        )
        .await
        .expect("notifier starts");
        let mut webhooks_settings = webhook_dispatcher::settings::Settings {
            common: common("webhooks"),
            webhook_retry_delays_ms: "200,400,800".into(),
            webhook_timeout_ms: 2000,
            webhook_allowed_hosts: "127.0.0.0/8,::1".into(),
            webhook_https_only: false,
            webhook_endpoint_concurrency: 4,
            webhook_disable_after_ms: 5 * 24 * 3600 * 1000,
            webhook_attempt_retention_days: 30,
            webhook_secret_key: Some(Secret::new(TEST_WEBHOOK_SECRET_KEY)),
            webhook_secret_old_keys: None,
            webhook_secret_key_file: String::new(),
        };
        let webhooks_cancel = cancel.child_token();
        let webhooks = webhook_dispatcher::startup::build(
            webhooks_settings.clone(),
            hooks.webhooks.options(webhook_dispatcher::SERVICE),
            webhooks_cancel.clone(),
        )
        .await
        .expect("webhook-dispatcher starts");
        let webhooks_port = webhooks.port;
        webhooks_settings.common.http_addr = format!("127.0.0.1:{webhooks_port}");
        let (payment_port, notifier_port) = (payment.port, notifier.port);
        let gateway = order_api::startup::build_gateway(
            changed(
                options.gateway,
                order_api::settings::Settings {
                    common: common("order_api"),
                    inventory_url: format!("http://127.0.0.1:{inventory_port}"),
                    payment_url: format!("http://127.0.0.1:{payment_port}"),
                    notifier_url: format!("http://127.0.0.1:{notifier_port}"),
                    webhooks_url: format!("http://127.0.0.1:{webhooks_port}"),
                    payment_simulator_enabled: true,
                    max_items_per_order: 50,
                    max_quantity_per_line: 1000,
                    upstream_timeout_ms: 5000,
                    guest_checkout: true,
                    bootstrap_admin_email: Some(ADMIN_EMAIL.into()),
                    bootstrap_admin_password: Some(Secret::new(ADMIN_PASSWORD)),
                    rate_limit_per_second: options.rate_limit_per_second,
                    rate_limit_burst: options.rate_limit_per_second * 2.0,
                    cors_allowed_origins: "https://shop.example".into(),
                    json_max_depth: 32,
                    stuck_order_after_seconds: 900,
                    trusted_proxies: String::new(),
                    // Off: scenarios keep many orders unpaid at once; security_guests sets it.
                    max_open_orders_per_client: 0,
                    idempotency_in_flight_timeout_ms: 60_000,
                    login_free_attempts_per_account: 5,
                    login_free_attempts_per_client: 50,
                    login_backoff_max_seconds: 900,
                    metrics_addr: "127.0.0.1:0".into(),
                    public_base_url: "http://127.0.0.1:8080".into(),
                    jwt_internal_ttl_seconds: 60,
                },
            ),
            ConsumerOptions::new(order_api::SERVICE),
            cancel.clone(),
        )
        .await
        .expect("order-api starts");
        let (gateway, metrics_port) = (gateway.service, gateway.metrics_port);
        let ports = [gateway.port, payment.port, notifier.port, webhooks_port, inventory_port];
        tasks.push(tokio::spawn(payment.run_until_stopped()));
        tasks.push(tokio::spawn(notifier.run_until_stopped()));
        let dispatcher = (webhooks_settings, webhooks_cancel, tasks.len());
        tasks.push(tokio::spawn(webhooks.run_until_stopped()));
        let gateway_url = format!("http://127.0.0.1:{}", gateway.port);
        tasks.push(tokio::spawn(gateway.run_until_stopped()));

        let http = reqwest::Client::new();
        for port in ports.into_iter().filter(|port| *port != 0) {
            let url = format!("http://127.0.0.1:{port}/health/ready");
            eventually("every service to be ready", Duration::from_secs(30), || {
                let (http, url) = (http.clone(), url.clone());
                async move {
                    http.get(&url)
                        .send()
                        .await
                        .ok()
                        .filter(|r| r.status().is_success())
                        .map(|_| ())
                }
            })
            .await;
        }
        let (spy, spy_connection) = spy_on_events(&vhost.amqp_url()).await;
        let login = http
            .post(format!("{gateway_url}/api/v1/auth/login"))
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
            .await
            .expect("login answers");
        assert_eq!(login.status().as_u16(), 200, "the bootstrap admin can log in");
        let admin_token = login.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
        Self {
            admin_token,
            db,
            vhost,
            gateway: gateway_url,
            smtp,
            receiver,
            http,
            hooks,
            spy,
            cancel,
            tasks,
            dispatcher,
            _spy_connection: spy_connection,
            _mail_dir: mail_dir,
            inventory: format!("http://127.0.0.1:{inventory_port}"),
            notifier: format!("http://127.0.0.1:{notifier_port}"),
            dispatcher_url: format!("http://127.0.0.1:{webhooks_port}"),
            metrics: format!("http://127.0.0.1:{metrics_port}"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway)
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self.http.post(self.url(path)).json(body).send().await.expect("gateway answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.http.get(self.url(path)).send().await.expect("gateway answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// An admin call (products, webhook endpoints, notifications): use these for admin routes so
    /// the scenario keeps working when the gateway requires an admin token.
    pub async fn admin_post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send_as(&self.admin_token, reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn admin_get(&self, path: &str) -> (u16, Value) {
        self.send_as(&self.admin_token, reqwest::Method::GET, path, None).await
    }

    pub async fn admin_patch(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send_as(&self.admin_token, reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn admin_delete(&self, path: &str) -> (u16, Value) {
        self.send_as(&self.admin_token, reqwest::Method::DELETE, path, None).await
    }

    /// A call with `token` as bearer.
    pub async fn send_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("gateway answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Creates a product through the gateway and waits until the gateway's catalog knows it.
    pub async fn product(&self, sku: &str, price: &str, stock: i64) -> Uuid {
        let (status, body) =
            self.admin_post("/api/v1/products", &json!({"sku": sku, "name": format!("Product {sku}"), "price": price, "currency": "USD", "stock": stock})).await;
        assert_eq!(status, 201, "product created: {body}");
        let id: Uuid = body["id"].as_str().unwrap().parse().unwrap();
        eventually("the catalog to learn the product", Duration::from_secs(20), || async move {
            (self
                .count(&format!("SELECT count(*) AS n FROM order_api.catalog_products WHERE id = '{id}'"))
                .await
                == 1)
                .then_some(())
        })
        .await;
        id
    }

    pub async fn order(&self, items: &[(Uuid, i64)], payment_method: Option<&str>) -> (u16, Value) {
        let items: Vec<Value> =
            items.iter().map(|(id, q)| json!({"product_id": id, "quantity": q})).collect();
        let mut body =
            json!({"customer_name": "Ada Lovelace", "customer_email": "ada@example.com", "items": items});
        if let Some(method) = payment_method {
            body["payment_method"] = json!(method);
        }
        self.post("/api/v1/orders", &body).await
    }

    /// Polls the order until `done` says so; returns the last body.
    pub async fn order_until(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let path = format!("/api/v1/orders/{id}");
        eventually(what, SAGA_TIMEOUT, || {
            let path = path.clone();
            let done = &done;
            async move {
                // As an admin: a guest order is not readable by its id alone.
                let (status, body) = self.admin_get(&path).await;
                (status == 200 && done(&body)).then_some(body)
            }
        })
        .await
    }

    pub async fn terminal(&self, id: &str) -> Value {
        self.order_until(id, "the order to reach a terminal state", |o| {
            matches!(o["status"].as_str(), Some("confirmed" | "failed"))
        })
        .await
    }

    pub async fn product_view(&self, id: Uuid) -> Value {
        let (status, body) = self.get(&format!("/api/v1/products/{id}")).await;
        assert_eq!(status, 200);
        body
    }

    /// Runs a statement as the superuser on this test's database (test set-up only).
    pub async fn execute(&self, sql: &str) {
        let mut conn = AsyncPgConnection::establish(&self.db.admin_url()).await.expect("admin connection");
        diesel::sql_query(sql).execute(&mut conn).await.expect(sql);
    }

    /// Runs a `SELECT count(*) AS n ...` as the superuser on this test's database.
    pub async fn count(&self, sql: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = AsyncPgConnection::establish(&self.db.admin_url()).await.expect("admin connection");
        diesel::sql_query(sql).get_result::<Count>(&mut conn).await.expect(sql).n
    }

    pub async fn text(&self, sql: &str) -> Vec<String> {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            t: String,
        }
        let mut conn = AsyncPgConnection::establish(&self.db.admin_url()).await.expect("admin connection");
        diesel::sql_query(sql).load::<Row>(&mut conn).await.expect(sql).into_iter().map(|r| r.t).collect()
    }

    /// Every event published so far, decoded.
    pub fn events(&self) -> Vec<Value> {
        self.spy.lock().unwrap().iter().filter_map(|bytes| serde_json::from_slice(bytes).ok()).collect()
    }

    pub async fn publish_raw(&self, routing_key: &str, payload: &[u8]) {
        let connection =
            lapin::Connection::connect(&self.vhost.amqp_url(), lapin::ConnectionProperties::default())
                .await
                .unwrap();
        let channel = connection.create_channel().await.unwrap();
        channel.confirm_select(Default::default()).await.unwrap();
        channel
            .basic_publish(
                messaging::topology::EXCHANGE.into(),
                routing_key.into(),
                Default::default(),
                payload,
                lapin::BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        let _ = connection.close(200, "done".into()).await;
    }

    pub async fn queue_depth(&self, queue: &str) -> u32 {
        let connection =
            lapin::Connection::connect(&self.vhost.amqp_url(), lapin::ConnectionProperties::default())
                .await
                .unwrap();
        let channel = connection.create_channel().await.unwrap();
        let declared = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions { passive: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let _ = connection.close(200, "done".into()).await;
        declared.message_count()
    }

    /// This system's database (as the superuser) and vhost, for the invariant check.
    pub fn invariants_target(&self) -> invariants::Target {
        let management =
            std::env::var("TEST_RABBITMQ_MANAGEMENT").unwrap_or_else(|_| "http://127.0.0.1:15672".to_owned());
        invariants::Target::new(self.db.admin_url(), self.vhost.amqp_url())
            .with_management(management, "guest", "guest")
    }

    /// Every test ends here: the system's invariants (crates/invariants: no dead letters, outboxes
    /// drained, every order terminal with its stock, money and invoice settled) must hold once
    /// it settles; then the system stops. A failure prints what broke, per order.
    pub async fn finish(self) {
        self.finish_with(|expected| expected).await;
    }

    /// [`Self::finish`], with the exceptions the test is about declared, e.g.
    /// `|e| e.expect_dead_letters("inventory.inbox.dlq", 1)`.
    pub async fn finish_with(self, declare: impl FnOnce(Expectations) -> Expectations) {
        let expected = declare(Expectations::new());
        let verdict =
            invariants::verify(&self.invariants_target(), &expected, invariants::SETTLE_TIMEOUT).await;
        if let Err(broken) = &verdict {
            eprintln!("{broken}");
        }
        // Stopped (and its database dropped) whatever the verdict.
        self.stop().await;
        if let Err(broken) = verdict {
            panic!("{broken}");
        }
    }

    pub async fn stop(self) {
        self.cancel.cancel();
        for task in self.tasks {
            let finished = tokio::time::timeout(Duration::from_secs(30), task).await;
            assert!(matches!(finished, Ok(Ok(Ok(())))), "a service did not stop cleanly: {finished:?}");
        }
        let _ = self.db.drop_database().await;
        let _ = self.vhost.delete().await;
    }

    /// Stops the webhook dispatcher alone (the rest keeps running), as a deploy or crash would.
    pub async fn stop_dispatcher(&mut self) {
        let (_, cancel, index) = &self.dispatcher;
        cancel.cancel();
        let stopped = std::mem::replace(&mut self.tasks[*index], tokio::spawn(async { Ok(()) }));
        let finished = tokio::time::timeout(Duration::from_secs(30), stopped).await;
        assert!(matches!(finished, Ok(Ok(Ok(())))), "the dispatcher did not stop cleanly: {finished:?}");
    }

    /// Starts a new dispatcher on the same database and port, with `change` applied to its
    /// settings.
    pub async fn start_dispatcher(
        &mut self,
        change: impl FnOnce(&mut webhook_dispatcher::settings::Settings),
    ) {
        self.try_start_dispatcher(change).await.expect("webhook-dispatcher restarts");
    }

    /// [`Self::start_dispatcher`], returning the start-up error instead of failing the test.
    pub async fn try_start_dispatcher(
        &mut self,
        change: impl FnOnce(&mut webhook_dispatcher::settings::Settings),
    ) -> anyhow::Result<()> {
        change(&mut self.dispatcher.0);
        self.dispatcher.1 = self.cancel.child_token();
        let app = webhook_dispatcher::startup::build(
            self.dispatcher.0.clone(),
            self.hooks.webhooks.options(webhook_dispatcher::SERVICE),
            self.dispatcher.1.clone(),
        )
        .await?;
        self.tasks[self.dispatcher.2] = tokio::spawn(app.run_until_stopped());
        Ok(())
    }

    /// Starts one more notifier (a second replica) on this test's database, vhost and SMTP
    /// server, with `configure` applied to its settings.
    pub async fn start_notifier(&mut self, configure: impl FnOnce(&mut notifier::settings::Settings)) {
        let mut settings = notifier::settings::Settings {
            common: common_settings(&self.db, &self.vhost, "notifier"),
            smtp_url: Some(Secret::new(self.smtp.url())),
            mail_dir: self._mail_dir.to_string_lossy().into_owned(),
            mail_from: "Orders <orders@localhost>".into(),
            notification_retry_delays_ms: "200,400,800".into(),
            sms_provider_url: None,
            sms_provider_token: None,
            daily_summary_at: "07:00".into(),
            daily_summary_recipients: String::new(),
        };
        configure(&mut settings);
        let app =
            notifier::startup::build(settings, ConsumerOptions::new(notifier::SERVICE), self.cancel.clone())
                .await
                .expect("another notifier starts");
        self.tasks.push(tokio::spawn(app.run_until_stopped()));
    }

    /// The secret the simulated provider signs callbacks with in tests.
    pub const PAYMENT_WEBHOOK_SECRET: &'static str = "whsec_test_simulator";

    /// Payment settings for tests: fast retries and re-checks, a short grace period.
    pub fn payment_settings(common: CommonSettings) -> payment::settings::Settings {
        payment::settings::Settings {
            common,
            payment_provider: "simulated".into(),
            payment_simulator_enabled: true,
            payment_webhook_secret: Secret::new(Self::PAYMENT_WEBHOOK_SECRET),
            payment_callback_tolerance_seconds: 300,
            payment_retry_delays_ms: "100,200,400,800".into(),
            payment_recheck_interval_ms: 500,
            payment_grace_period_ms: 6000,
            payment_action_timeout_ms: 6000,
            payment_sweep_interval_ms: 300,
            payment_lease_ms: 3000,
            stripe_api_base: "http://127.0.0.1:9".into(),
            stripe_api_key: Secret::new(""),
            stripe_timeout_ms: 2000,
            stripe_max_retries: 1,
        }
    }

    /// Starts one more payment instance (a second replica) on this test's database and vhost;
    /// returns its base URL.
    pub async fn start_payment(&mut self) -> String {
        let common = common_settings(&self.db, &self.vhost, "payment");
        let app = payment::startup::build(
            Self::payment_settings(common),
            ConsumerOptions::new(payment::SERVICE),
            self.cancel.clone(),
        )
        .await
        .expect("another payment instance starts");
        let url = format!("http://127.0.0.1:{}", app.port);
        self.tasks.push(tokio::spawn(app.run_until_stopped()));
        url
    }
}

/// A queue bound to every routing key, so a test sees every event the system publishes.
async fn spy_on_events(url: &str) -> (Arc<Mutex<Vec<Vec<u8>>>>, lapin::Connection) {
    let connection = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    let queue = channel
        .queue_declare(
            "".into(),
            QueueDeclareOptions { exclusive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            queue.name().clone(),
            messaging::topology::EXCHANGE.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut consumer = channel
        .basic_consume(
            queue.name().clone(),
            "spy".into(),
            BasicConsumeOptions { no_ack: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let store = seen.clone();
    tokio::spawn(async move {
        while let Some(Ok(delivery)) = consumer.next().await {
            store.lock().unwrap().push(delivery.data);
        }
    });
    (seen, connection)
}

/// The settings every service gets in a test: its role on this test's database, this test's
/// vhost, fast retries, small pools.
fn common_settings(db: &TestDatabase, vhost: &TestVhost, role: &str) -> CommonSettings {
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
    }
}
