//! Stopping and restarting the dispatcher, and starting more replicas of a service.

use super::{System, common_settings};
use chassis::CommonSettings;
use messaging::ConsumerOptions;
use platform::settings::Secret;
use std::time::Duration;

impl System {
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
            notification_worker_batch: 20,
            notification_worker_concurrency: 4,
            notification_lease_ms: 60_000,
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
            payment_worker_batch: 20,
            payment_worker_concurrency: 20,
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
