//! Starting the five services, the SMTP server, the webhook receiver and the event spy.

use super::{
    ADMIN_EMAIL, ADMIN_PASSWORD, CrashHooks, Options, System, TEST_WEBHOOK_SECRET_KEY, changed,
    common_settings,
};
use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use messaging::ConsumerOptions;
use platform::settings::Secret;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testkit::{HttpReceiver, SmtpServer, TestDatabase, TestVhost, eventually};
use tokio_util::sync::CancellationToken;

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
        let topology = messaging::Topology {
            participants: crate::topology::participants(),
            ..common_settings(&db, &vhost, "inventory").topology().unwrap()
        };
        topology.declare_everything(&vhost.amqp_url()).await.expect("topology");
        let smtp = SmtpServer::start().await.expect("smtp server");
        let receiver = HttpReceiver::start().await.expect("webhook receiver");
        let cancel = CancellationToken::new();
        let hooks = CrashHooks::default();
        let common = |role: &str| common_settings(&db, &vhost, role);
        let mut tasks = Vec::new();

        let images = options.images.clone().unwrap_or_else(|| {
            super::local_images(&std::env::temp_dir().join(format!("images-{}", db.name)))
        });
        let mut inventory_port = 0;
        for _ in 0..options.inventory_instances {
            let app = inventory::startup::build(
                inventory::settings::Settings {
                    common: common("inventory"),
                    images: images.clone(),
                    rates: options.rates.clone().unwrap_or_else(|| inventory::rates::RateSettings {
                        rates_source_url: String::new(),
                        rates_refresh_at: "16:00".into(),
                        rates_max_age_days: 5,
                    }),
                },
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
                notification_worker_batch: 20,
                notification_worker_concurrency: 4,
                notification_lease_ms: 60_000,
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
            webhook_worker_batch: 64,
            webhook_worker_concurrency: 64,
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
                    product_image_max_bytes: images.product_image_max_bytes,
                    stuck_order_after_seconds: 900,
                    trusted_proxies: String::new(),
                    // Off: scenarios keep many orders unpaid at once; security_guests sets it.
                    max_open_orders_per_client: 0,
                    rates_max_age_days: 5,
                    idempotency_in_flight_timeout_ms: 60_000,
                    login_free_attempts_per_account: 5,
                    login_free_attempts_per_client: 50,
                    login_backoff_max_seconds: 900,
                    metrics_addr: "127.0.0.1:0".into(),
                    public_base_url: "http://127.0.0.1:8080".into(),
                    jwt_internal_ttl_seconds: 60,
                    live_heartbeat_ms: 15_000,
                    live_max_streams_per_client: 5,
                    require_verified_email: false,
                    email_verification_ttl_seconds: 86_400,
                    password_reset_ttl_seconds: 3600,
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
