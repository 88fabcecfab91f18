use chassis::CommonSettings;
use platform::retry::RetrySchedule;
use platform::settings::{Secret, SettingsError};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
    /// `simulated` (built in, deterministic by payment method) or `stripe`.
    pub payment_provider: String,
    /// The simulator confirms orders without taking money, so it runs only when this is set
    /// explicitly (`make run`, docker-compose, tests); never in production.
    pub payment_simulator_enabled: bool,
    /// The secret provider callbacks are signed with (Stripe's `whsec_…`). Required with a real
    /// provider (at least 32 bytes, not a published example); the simulator, when none is set,
    /// signs with a random one made at start-up.
    pub payment_webhook_secret: Secret,
    /// Callbacks signed longer ago (or further ahead) than this are refused as stale.
    pub payment_callback_tolerance_seconds: i64,
    /// Comma-separated milliseconds to wait between provider calls after transient errors
    /// (n delays, n + 1 calls; jitter only lengthens a wait); once used up, the job gives up
    /// (a charge fails with `provider_unavailable`).
    #[serde(deserialize_with = "platform::settings::string_or_number")]
    pub payment_retry_delays_ms: String,
    /// How often a payment waiting on the customer or the provider is re-checked.
    pub payment_recheck_interval_ms: u64,
    /// How long a payment may wait on the provider (`processing`) before it fails with
    /// `payment_timeout`.
    pub payment_grace_period_ms: u64,
    /// How long a payment may wait on the customer (3-D Secure and the like) before it fails
    /// with `payment_timeout` and the order's stock is released. Short, so unpaid orders cannot
    /// hold the catalogue.
    pub payment_action_timeout_ms: u64,
    /// How often the (single-replica) expiry sweep runs.
    pub payment_sweep_interval_ms: u64,
    /// How long a worker holds a payment while calling the provider; a crashed worker's
    /// payments are taken up again after it.
    pub payment_lease_ms: u64,
    /// Due payments claimed by one statement (and recorded, at most, by one transaction).
    pub payment_worker_batch: usize,
    /// Payments being worked on (provider calls in flight) at once.
    pub payment_worker_concurrency: usize,
    /// Stripe adapter: API base URL, secret key, per-request timeout and quick retries.
    pub stripe_api_base: String,
    pub stripe_api_key: Secret,
    pub stripe_timeout_ms: u64,
    pub stripe_max_retries: u32,
}

impl Settings {
    pub fn load() -> Result<Self, SettingsError> {
        let mut defaults = CommonSettings::defaults("payment", 8082);
        for (key, value) in Self::payment_defaults() {
            defaults.push((key, value.to_owned()));
        }
        chassis::load_settings(&defaults)
    }

    /// The payment keys' defaults (also used by tests that build settings by hand).
    pub fn payment_defaults() -> [(&'static str, &'static str); 16] {
        [
            ("payment_provider", "simulated"),
            ("payment_simulator_enabled", "false"),
            ("payment_webhook_secret", ""),
            ("payment_callback_tolerance_seconds", "300"),
            ("payment_retry_delays_ms", "1000,5000,30000,120000,600000"),
            ("payment_recheck_interval_ms", "60000"),
            ("payment_grace_period_ms", "259200000"),
            ("payment_action_timeout_ms", "900000"),
            ("payment_sweep_interval_ms", "60000"),
            ("payment_lease_ms", "60000"),
            ("payment_worker_batch", "20"),
            ("payment_worker_concurrency", "20"),
            ("stripe_api_base", "https://api.stripe.com"),
            ("stripe_api_key", ""),
            ("stripe_timeout_ms", "10000"),
            ("stripe_max_retries", "2"),
        ]
    }

    /// The waits between provider calls after transient errors (n delays, n + 1 calls).
    pub fn retry_delays(&self) -> Result<RetrySchedule, SettingsError> {
        RetrySchedule::parse("payment_retry_delays_ms", &self.payment_retry_delays_ms)
    }

    /// How the worker claims and works: `payment_lease_ms` is the lease.
    pub fn worker(&self) -> Result<jobs::Config, SettingsError> {
        jobs::Config::from_settings(
            ("payment_worker_batch", self.payment_worker_batch),
            ("payment_worker_concurrency", self.payment_worker_concurrency),
            std::time::Duration::from_millis(self.payment_lease_ms),
        )
    }

    /// Every check, before anything connects.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.retry_delays()?;
        self.worker()?;
        let invalid = |key, reason: &str| Err(SettingsError::Invalid { key, reason: reason.into() });
        match self.payment_provider.as_str() {
            "simulated" if !self.payment_simulator_enabled => {
                return invalid(
                    "payment_provider",
                    "`simulated` confirms orders without taking money; set PAYMENT_SIMULATOR_ENABLED=true \
                     for a local or test setup, or PAYMENT_PROVIDER=stripe with STRIPE_API_KEY and \
                     PAYMENT_WEBHOOK_SECRET",
                );
            }
            "simulated" => {}
            "stripe" if self.stripe_api_key.expose().is_empty() => {
                return invalid("stripe_api_key", "is required with the stripe provider");
            }
            "stripe" => {
                if let Err(reason) = check_callback_secret(self.payment_webhook_secret.expose()) {
                    return invalid("payment_webhook_secret", &reason);
                }
            }
            _ => return invalid("payment_provider", "must be `simulated` or `stripe`"),
        }
        for (key, value) in [
            ("payment_action_timeout_ms", self.payment_action_timeout_ms),
            ("payment_grace_period_ms", self.payment_grace_period_ms),
            ("payment_recheck_interval_ms", self.payment_recheck_interval_ms),
            ("payment_sweep_interval_ms", self.payment_sweep_interval_ms),
            ("payment_lease_ms", self.payment_lease_ms),
            ("stripe_timeout_ms", self.stripe_timeout_ms),
        ] {
            if value == 0 {
                return invalid(key, "must be above zero");
            }
        }
        Ok(())
    }
}

/// Secrets published in this repository's history, its docs or Stripe's examples: whoever reads
/// them could sign callbacks and mark any payment paid.
const PUBLIC_SECRETS: [&str; 4] =
    ["whsec_simulated_local_only", "whsec_test_simulator", "change-me", "whsec_change_me"];

/// The shortest callback secret accepted for a real provider (Stripe's are longer).
pub const MIN_CALLBACK_SECRET_BYTES: usize = 32;

/// Why `secret` cannot sign a real provider's callbacks, if it cannot.
fn check_callback_secret(secret: &str) -> Result<(), String> {
    let secret = secret.trim();
    if secret.is_empty() {
        return Err("is required with a real provider: set PAYMENT_WEBHOOK_SECRET to the provider's \
                    signing secret"
            .into());
    }
    if PUBLIC_SECRETS.iter().any(|public| public.eq_ignore_ascii_case(secret)) {
        return Err("is a published example value; set PAYMENT_WEBHOOK_SECRET to the provider's \
                    signing secret"
            .into());
    }
    if secret.len() < MIN_CALLBACK_SECRET_BYTES {
        return Err(format!(
            "is {} bytes; a real provider's signing secret has at least {MIN_CALLBACK_SECRET_BYTES}",
            secret.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Settings {
        Settings::load().unwrap_or_else(|e| panic!("the defaults load: {e}"))
    }

    fn refusal(settings: &Settings) -> String {
        settings.validate().err().map(|e| e.to_string()).unwrap_or_default()
    }

    /// The built-in defaults load, and run the simulator once it is switched on explicitly
    /// (`make run` and docker-compose set PAYMENT_SIMULATOR_ENABLED=true).
    #[test]
    fn the_defaults_load_and_run_the_simulator_only_when_enabled() {
        let mut settings = defaults();
        assert_eq!(settings.payment_grace_period_ms, 3 * 24 * 3600 * 1000);
        assert_eq!(settings.payment_action_timeout_ms, 15 * 60 * 1000);
        let refused = refusal(&settings);
        assert!(
            refused.contains("payment_provider") && refused.contains("PAYMENT_SIMULATOR_ENABLED=true"),
            "the refusal says what to set: {refused}"
        );
        assert!(!refused.contains('\n'), "one line: {refused}");
        settings.payment_simulator_enabled = true;
        assert_eq!(settings.validate().map_err(|e| e.to_string()), Ok(()));
    }

    #[test]
    fn a_real_provider_needs_a_long_private_callback_secret() {
        let mut settings = defaults();
        settings.payment_provider = "stripe".into();
        settings.stripe_api_key = Secret::new("sk_test_123");
        // The simulator switch does not weaken the checks for a real provider.
        settings.payment_simulator_enabled = true;
        for (secret, why) in [
            ("", "is required"),
            ("   ", "is required"),
            ("whsec_simulated_local_only", "published"),
            ("WHSEC_SIMULATED_LOCAL_ONLY", "published"),
            ("change-me", "published"),
            ("whsec_short", "is 11 bytes"),
        ] {
            settings.payment_webhook_secret = Secret::new(secret);
            let refused = refusal(&settings);
            assert!(
                refused.contains("payment_webhook_secret") && refused.contains(why),
                "{secret:?}: {refused}"
            );
        }
        settings.payment_webhook_secret = Secret::new("whsec_0123456789abcdef0123456789abcdef");
        assert_eq!(settings.validate().map_err(|e| e.to_string()), Ok(()));
        settings.stripe_api_key = Secret::new("");
        assert!(refusal(&settings).contains("stripe_api_key"));
    }

    #[test]
    fn no_public_secret_is_a_default() {
        for (key, value) in Settings::payment_defaults() {
            assert!(!PUBLIC_SECRETS.contains(&value), "{key} defaults to a published secret");
        }
    }
}
