use messaging::CommonSettings;
use platform::settings::{Secret, SettingsError, parse_millis_list};
use serde::{Deserialize, Deserializer};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
    /// `smtp://host:port` or `smtps://user:pass@host`; absent (or empty), emails are written as
    /// `.eml` files under `mail_dir` instead, which is what development and tests want.
    #[serde(default, deserialize_with = "optional_secret")]
    pub smtp_url: Option<Secret>,
    pub mail_dir: String,
    pub mail_from: String,
    /// Comma-separated milliseconds: the wait after each failed attempt. Its length is also the
    /// number of attempts before a notification is given up as failed.
    #[serde(deserialize_with = "platform::settings::string_or_number")]
    pub notification_retry_delays_ms: String,
}

impl Settings {
    pub fn load() -> Result<Self, SettingsError> {
        let mut defaults = CommonSettings::defaults("notifier", 8083);
        defaults.extend([
            ("mail_dir", "var/mail".to_owned()),
            ("mail_from", "Orders <orders@localhost>".to_owned()),
            ("notification_retry_delays_ms", "2000,4000,8000".to_owned()),
        ]);
        let settings: Self = messaging::runtime::load_settings(&defaults)?;
        settings.retry_delays()?;
        Ok(settings)
    }

    pub fn retry_delays(&self) -> Result<Vec<Duration>, SettingsError> {
        let delays = parse_millis_list("notification_retry_delays_ms", &self.notification_retry_delays_ms)?;
        if delays.is_empty() {
            return Err(SettingsError::Invalid {
                key: "notification_retry_delays_ms",
                reason: "needs at least one delay".into(),
            });
        }
        Ok(delays)
    }
}

/// An empty `SMTP_URL=` means "no SMTP", as if it were unset.
fn optional_secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Secret>, D::Error> {
    let raw: Option<String> = Option::deserialize(deserializer)?;
    Ok(raw
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
        .map(Secret::new))
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
