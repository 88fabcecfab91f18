use messaging::CommonSettings;
use platform::settings::{Secret, SettingsError, parse_millis_list};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
    /// `simulated` (built in, deterministic by payment method) or `stripe`.
    pub payment_provider: String,
    /// The secret provider callbacks are signed with (Stripe's `whsec_…`; the simulator signs
    /// with it too).
    pub payment_webhook_secret: Secret,
    /// Callbacks signed longer ago (or further ahead) than this are refused as stale.
    pub payment_callback_tolerance_seconds: i64,
    /// Comma-separated milliseconds to wait after each transient provider error; once used up,
    /// the job gives up (a charge fails with `provider_unavailable`).
    #[serde(deserialize_with = "platform::settings::string_or_number")]
    pub payment_retry_delays_ms: String,
    /// How often a payment waiting on the customer or the provider is re-checked.
    pub payment_recheck_interval_ms: u64,
    /// How long a payment may wait on the customer or the provider before it fails with
    /// `payment_timeout`.
    pub payment_grace_period_ms: u64,
    /// How often the (single-replica) expiry sweep runs.
    pub payment_sweep_interval_ms: u64,
    /// How long a worker holds a payment while calling the provider; a crashed worker's
    /// payments are taken up again after it.
    pub payment_lease_ms: u64,
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
        messaging::runtime::load_settings(&defaults)
    }

    /// The payment keys' defaults (also used by tests that build settings by hand).
    pub fn payment_defaults() -> [(&'static str, &'static str); 12] {
        [
            ("payment_provider", "simulated"),
            ("payment_webhook_secret", "whsec_simulated_local_only"),
            ("payment_callback_tolerance_seconds", "300"),
            ("payment_retry_delays_ms", "1000,5000,30000,120000,600000"),
            ("payment_recheck_interval_ms", "60000"),
            ("payment_grace_period_ms", "259200000"),
            ("payment_sweep_interval_ms", "60000"),
            ("payment_lease_ms", "60000"),
            ("stripe_api_base", "https://api.stripe.com"),
            ("stripe_api_key", ""),
            ("stripe_timeout_ms", "10000"),
            ("stripe_max_retries", "2"),
        ]
    }

    pub fn retry_delays(&self) -> Result<Vec<Duration>, SettingsError> {
        parse_millis_list("payment_retry_delays_ms", &self.payment_retry_delays_ms)
    }

    /// Every check, before anything connects.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.retry_delays()?;
        let invalid = |key, reason: &str| Err(SettingsError::Invalid { key, reason: reason.into() });
        match self.payment_provider.as_str() {
            "simulated" => {}
            "stripe" if self.stripe_api_key.expose().is_empty() => {
                return invalid("stripe_api_key", "is required with the stripe provider");
            }
            "stripe" => {}
            _ => return invalid("payment_provider", "must be `simulated` or `stripe`"),
        }
        if self.payment_webhook_secret.expose().is_empty() {
            return invalid("payment_webhook_secret", "must not be empty");
        }
        for (key, value) in [
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

#[cfg(test)]
mod tests {
    /// The built-in defaults alone must make a working configuration (`make run` sets nothing).
    #[test]
    fn the_defaults_load_without_any_environment() {
        let loaded = super::Settings::load().map_err(|e| e.to_string());
        assert_eq!(loaded.as_ref().map(|_| ()), Ok(()));
        let Ok(settings) = loaded else { return };
        assert_eq!(settings.validate().map_err(|e| e.to_string()), Ok(()));
        assert_eq!(settings.payment_grace_period_ms, 3 * 24 * 3600 * 1000);
    }
}
