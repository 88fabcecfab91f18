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
}

impl Settings {
    pub fn load() -> Result<Self, SettingsError> {
        let mut defaults = CommonSettings::defaults("webhooks", 8084);
        defaults.push((
            "webhook_retry_delays_ms",
            "5000,300000,1800000,7200000,18000000,36000000,36000000".to_owned(),
        ));
        defaults.push(("webhook_timeout_ms", "15000".to_owned()));
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
}

#[cfg(test)]
mod tests {
    /// The built-in defaults alone must make a working configuration (`make run` sets nothing).
    #[test]
    fn the_defaults_load_without_any_environment() {
        let loaded = super::Settings::load().map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(loaded, Ok(()));
    }
}
