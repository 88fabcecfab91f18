use crate::guard::Guard;
use messaging::CommonSettings;
use platform::settings::{SettingsError, parse_millis_list};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
    /// Comma-separated milliseconds to wait after each failed attempt (the first attempt is
    /// immediate); once they are used up the delivery is marked failed.
    #[serde(deserialize_with = "platform::settings::string_or_number")]
    pub webhook_retry_delays_ms: String,
    /// Per-request timeout for one POST to an endpoint.
    pub webhook_timeout_ms: u64,
    /// Comma-separated networks (`10.1.0.0/16`), addresses (`::1`) or host names that
    /// endpoints may point at although they are private, loopback or link-local. Empty: only
    /// public addresses.
    pub webhook_allowed_hosts: String,
    /// Refuse `http://` endpoints, at creation and at delivery.
    pub webhook_https_only: bool,
    /// Deliveries in flight at once per endpoint, so one slow receiver cannot starve the rest.
    pub webhook_endpoint_concurrency: usize,
    /// An endpoint whose attempts have all failed for this long is disabled.
    pub webhook_disable_after_ms: u64,
}

impl Settings {
    pub fn load() -> Result<Self, SettingsError> {
        let mut defaults = CommonSettings::defaults("webhooks", 8084);
        defaults.push((
            "webhook_retry_delays_ms",
            "5000,300000,1800000,7200000,18000000,36000000,36000000".to_owned(),
        ));
        defaults.push(("webhook_timeout_ms", "15000".to_owned()));
        // Loopback is allowed by default so `make run` works with a receiver on this machine;
        // a deployment sets its own list (or an empty one).
        defaults.push(("webhook_allowed_hosts", "127.0.0.0/8,::1".to_owned()));
        defaults.push(("webhook_https_only", "false".to_owned()));
        defaults.push(("webhook_endpoint_concurrency", "4".to_owned()));
        defaults.push(("webhook_disable_after_ms", (5 * 24 * 3600 * 1000_u64).to_string()));
        messaging::runtime::load_settings(&defaults)
    }

    pub fn retry_delays(&self) -> Result<Vec<Duration>, SettingsError> {
        parse_millis_list("webhook_retry_delays_ms", &self.webhook_retry_delays_ms)
    }

    pub fn timeout(&self) -> Result<Duration, SettingsError> {
        if self.webhook_timeout_ms == 0 {
            return Err(SettingsError::Invalid {
                key: "webhook_timeout_ms",
                reason: "must be above zero".into(),
            });
        }
        Ok(Duration::from_millis(self.webhook_timeout_ms))
    }

    pub fn guard(&self) -> Result<Guard, SettingsError> {
        Guard::new(&self.webhook_allowed_hosts, self.webhook_https_only).map_err(|entry| {
            SettingsError::Invalid {
                key: "webhook_allowed_hosts",
                reason: format!("{entry} is neither a network, an address nor a host name"),
            }
        })
    }

    pub fn endpoint_concurrency(&self) -> Result<usize, SettingsError> {
        match self.webhook_endpoint_concurrency {
            0 => Err(SettingsError::Invalid {
                key: "webhook_endpoint_concurrency",
                reason: "must be above zero".into(),
            }),
            n => Ok(n),
        }
    }

    pub fn disable_after(&self) -> Duration {
        Duration::from_millis(self.webhook_disable_after_ms)
    }

    /// Every check, before anything connects.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.retry_delays()?;
        self.timeout()?;
        self.guard()?;
        self.endpoint_concurrency()?;
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
        assert_eq!(settings.guard().map_err(|e| e.to_string()), super::Guard::new("127.0.0.0/8,::1", false));
    }
}
