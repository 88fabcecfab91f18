use crate::guard::Guard;
use crate::secrets::{Key, Keyring, local_key};
use chassis::CommonSettings;
use platform::retry::RetrySchedule;
use platform::settings::{Secret, SettingsError};
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
    /// Comma-separated milliseconds to wait between attempts (the first attempt is immediate;
    /// n delays make n + 1 attempts); once they are used up the delivery is marked failed.
    /// Jitter only lengthens a wait, so the default's nominal 27.6 h is a floor above 24 h.
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
    /// Due deliveries claimed by one statement (and recorded, at most, by one transaction).
    pub webhook_worker_batch: usize,
    /// Deliveries in flight at once, over all endpoints.
    pub webhook_worker_concurrency: usize,
    /// An endpoint whose attempts have all failed for this long is disabled.
    pub webhook_disable_after_ms: u64,
    /// Days each delivery attempt stays in the log (`GET .../deliveries` shows them); older
    /// ones are deleted by `retention`.
    pub webhook_attempt_retention_days: u32,
    /// Base64 of 32 random bytes: the AES-256-GCM key that seals endpoint signing secrets at
    /// rest. Required in production (see `webhook_secret_key_file`).
    #[serde(default)]
    pub webhook_secret_key: Option<Secret>,
    /// Comma-separated base64 keys that sealed secrets before a key rotation: they still open
    /// them, and start-up re-seals every row under `webhook_secret_key`.
    #[serde(default)]
    pub webhook_secret_old_keys: Option<Secret>,
    /// Where a key is kept (created on first start) when `webhook_secret_key` is unset, so
    /// `make run` needs no configuration. Empty: no file, the key is required.
    pub webhook_secret_key_file: String,
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
        defaults.push(("webhook_worker_batch", "64".to_owned()));
        defaults.push(("webhook_worker_concurrency", "64".to_owned()));
        defaults.push(("webhook_disable_after_ms", (5 * 24 * 3600 * 1000_u64).to_string()));
        defaults.push(("webhook_attempt_retention_days", "30".to_owned()));
        defaults.push(("webhook_secret_key_file", "var/webhook-secret.key".to_owned()));
        chassis::load_settings(&defaults)
    }

    /// The waits between delivery attempts (n delays, n + 1 attempts).
    pub fn retry_delays(&self) -> Result<RetrySchedule, SettingsError> {
        RetrySchedule::parse("webhook_retry_delays_ms", &self.webhook_retry_delays_ms)
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

    /// How the delivery worker claims and sends; `lease` outlives the request timeout.
    pub fn worker(&self, lease: Duration) -> Result<jobs::Config, SettingsError> {
        jobs::Config::from_settings(
            ("webhook_worker_batch", self.webhook_worker_batch),
            ("webhook_worker_concurrency", self.webhook_worker_concurrency),
            lease,
        )
    }

    pub fn attempt_retention_days(&self) -> Result<u32, SettingsError> {
        match self.webhook_attempt_retention_days {
            0 => Err(SettingsError::Invalid {
                key: "webhook_attempt_retention_days",
                reason: "must be at least 1 (the days each delivery attempt is kept in the log)".into(),
            }),
            // Beyond any sensible log, and keeps the interval arithmetic in PostgreSQL in range.
            days if days > 36_500 => Err(SettingsError::Invalid {
                key: "webhook_attempt_retention_days",
                reason: "must be at most 36500 (100 years)".into(),
            }),
            days => Ok(days),
        }
    }

    pub fn disable_after(&self) -> Duration {
        Duration::from_millis(self.webhook_disable_after_ms)
    }

    /// The configured key (checked, not the local file's), or `None` when it is to come from
    /// `webhook_secret_key_file`.
    fn configured_key(&self) -> Result<Option<Key>, SettingsError> {
        let Some(key) = self.webhook_secret_key.as_ref().filter(|k| !k.expose().trim().is_empty()) else {
            if self.webhook_secret_key_file.trim().is_empty() {
                return Err(SettingsError::Invalid {
                    key: "webhook_secret_key",
                    reason: "is required when webhook_secret_key_file is empty (as in production): set \
                             WEBHOOK_SECRET_KEY to 32 random bytes in base64 (`openssl rand -base64 32`)"
                        .into(),
                });
            }
            return Ok(None);
        };
        Key::from_base64(key.expose())
            .map(Some)
            .map_err(|e| SettingsError::Invalid { key: "webhook_secret_key", reason: e.to_string() })
    }

    fn old_keys(&self) -> Result<Vec<Key>, SettingsError> {
        let raw = self.webhook_secret_old_keys.as_ref().map(Secret::expose).unwrap_or_default();
        raw.split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .enumerate()
            .map(|(index, k)| {
                Key::from_base64(k).map_err(|e| SettingsError::Invalid {
                    key: "webhook_secret_old_keys",
                    reason: format!("entry {} {e}", index + 1),
                })
            })
            .collect()
    }

    /// The keys that seal and open endpoint secrets; without a configured key, the one in
    /// `webhook_secret_key_file` (created on first start).
    pub fn secret_keys(&self) -> Result<Keyring, SettingsError> {
        let current = match self.configured_key()? {
            Some(key) => key,
            None => local_key(&self.webhook_secret_key_file)
                .map_err(|reason| SettingsError::Invalid { key: "webhook_secret_key_file", reason })?,
        };
        Ok(Keyring::new(current, self.old_keys()?))
    }

    /// Every check, before anything connects (the local key file is not created here).
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.retry_delays()?;
        self.timeout()?;
        self.guard()?;
        self.endpoint_concurrency()?;
        self.worker(self.timeout()?)?;
        self.attempt_retention_days()?;
        self.configured_key()?;
        self.old_keys()?;
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

    /// The default schedule retries for at least 24 h whatever the jitter (which only
    /// lengthens waits): 8 attempts over a nominal 27.6 h.
    #[test]
    fn notifier_fixes_the_default_webhook_schedule_spans_at_least_24_hours_under_jitter() {
        let Ok(settings) = super::Settings::load() else { panic!("defaults load") };
        let Ok(schedule) = settings.retry_delays() else { panic!("the default schedule parses") };
        assert_eq!(schedule.attempts(), 8);
        let day = std::time::Duration::from_secs(24 * 3600);
        assert!(schedule.total() >= day, "{:?}", schedule.total());
        for _ in 0..100 {
            let run: std::time::Duration = (1..=7).filter_map(|k| schedule.jittered_delay_after(k)).sum();
            assert!(run >= day, "{run:?}");
        }
    }

    /// Production turns the local key file off (`WEBHOOK_SECRET_KEY_FILE=""`): then start-up
    /// refuses to run without a key, naming the setting and how to make one.
    #[test]
    fn security_webhooks_without_a_key_file_the_secret_key_is_required_and_checked() {
        let Ok(mut settings) = super::Settings::load() else { return };
        settings.webhook_secret_key = None;
        settings.webhook_secret_key_file = String::new();
        let error = settings.validate().map_err(|e| e.to_string()).err().unwrap_or_default();
        assert!(error.contains("webhook_secret_key") && error.contains("openssl rand -base64 32"), "{error}");
        settings.webhook_secret_key = Some(super::Secret::new("dG9vIHNob3J0"));
        let error = settings.validate().map_err(|e| e.to_string()).err().unwrap_or_default();
        assert!(error.contains("webhook_secret_key") && error.contains("32 bytes"), "{error}");
        let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        settings.webhook_secret_key = Some(super::Secret::new(key));
        assert_eq!(settings.validate().map_err(|e| e.to_string()), Ok(()));
        settings.webhook_secret_old_keys = Some(super::Secret::new(format!("{key}, nope")));
        let error = settings.validate().map_err(|e| e.to_string()).err().unwrap_or_default();
        assert!(error.contains("webhook_secret_old_keys") && error.contains("entry 2"), "{error}");
        assert!(!error.contains(key), "a key never appears in an error");
        settings.webhook_secret_old_keys = Some(super::Secret::new(key));
        assert_eq!(settings.secret_keys().map(|k| k.current_id().len()).map_err(|e| e.to_string()), Ok(12));
    }
}
