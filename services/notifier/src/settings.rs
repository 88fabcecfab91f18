use chassis::CommonSettings;
use platform::retry::RetrySchedule;
use platform::settings::{Secret, SettingsError};
use serde::{Deserialize, Deserializer};

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
    /// Comma-separated milliseconds: the waits between attempts, so n delays make n + 1
    /// attempts (the default `2000,4000,8000` makes 4). Jitter only lengthens a wait, by up to
    /// 20 %. Empty: one attempt, no retries.
    #[serde(deserialize_with = "platform::settings::string_or_number")]
    pub notification_retry_delays_ms: String,
    /// Due notifications claimed by one statement (and recorded by one transaction).
    pub notification_worker_batch: usize,
    /// Notifications being sent at once; SMTP pools connections, so a few run side by side.
    pub notification_worker_concurrency: usize,
    /// How long a claimed notification stays invisible to other workers: far above the SMTP
    /// and SMS timeouts, so a live worker always records before the lease runs out.
    pub notification_lease_ms: u64,
    /// Where text messages are POSTed as `{"to", "body"}`; absent (or empty), they are only
    /// logged.
    #[serde(default, deserialize_with = "optional_text")]
    pub sms_provider_url: Option<String>,
    /// Sent as `Authorization: Bearer …` to the SMS provider.
    #[serde(default, deserialize_with = "optional_secret")]
    pub sms_provider_token: Option<Secret>,
    /// `HH:MM` (UTC): when the daily sales summary of the day before is emailed.
    pub daily_summary_at: String,
    /// Comma-separated admin addresses for the daily summary; empty turns it off.
    pub daily_summary_recipients: String,
}

/// When and to whom the daily summary goes, once validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailySummary {
    pub at: chrono::NaiveTime,
    pub recipients: Vec<String>,
}

impl Settings {
    pub fn load() -> Result<Self, SettingsError> {
        let mut defaults = CommonSettings::defaults("notifier", 8083);
        defaults.extend([
            ("mail_dir", "var/mail".to_owned()),
            ("mail_from", "Orders <orders@localhost>".to_owned()),
            ("notification_retry_delays_ms", "2000,4000,8000".to_owned()),
            ("notification_worker_batch", "20".to_owned()),
            ("notification_worker_concurrency", "4".to_owned()),
            ("notification_lease_ms", "60000".to_owned()),
            ("daily_summary_at", "07:00".to_owned()),
            ("daily_summary_recipients", String::new()),
        ]);
        let settings: Self = chassis::load_settings(&defaults)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Names the first bad key; called by `load` and again by `build`.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.retry_delays()?;
        self.worker()?;
        self.daily_summary()?;
        Ok(())
    }

    /// `None` when no recipients are configured (the job is off).
    pub fn daily_summary(&self) -> Result<Option<DailySummary>, SettingsError> {
        let at = chrono::NaiveTime::parse_from_str(self.daily_summary_at.trim(), "%H:%M").map_err(|_| {
            SettingsError::Invalid { key: "daily_summary_at", reason: "must be HH:MM (UTC)".into() }
        })?;
        let recipients: Vec<String> = self
            .daily_summary_recipients
            .split(',')
            .map(str::trim)
            .filter(|address| !address.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(bad) = recipients.iter().find(|address| address.parse::<lettre::Address>().is_err()) {
            return Err(SettingsError::Invalid {
                key: "daily_summary_recipients",
                reason: format!("`{bad}` is not an email address"),
            });
        }
        Ok((!recipients.is_empty()).then_some(DailySummary { at, recipients }))
    }

    pub fn retry_delays(&self) -> Result<RetrySchedule, SettingsError> {
        RetrySchedule::parse("notification_retry_delays_ms", &self.notification_retry_delays_ms)
    }

    /// How the delivery worker claims and sends.
    pub fn worker(&self) -> Result<jobs::Config, SettingsError> {
        if self.notification_lease_ms == 0 {
            return Err(SettingsError::Invalid {
                key: "notification_lease_ms",
                reason: "must be above zero".into(),
            });
        }
        jobs::Config::from_settings(
            ("notification_worker_batch", self.notification_worker_batch),
            ("notification_worker_concurrency", self.notification_worker_concurrency),
            std::time::Duration::from_millis(self.notification_lease_ms),
        )
    }
}

/// An empty `SMTP_URL=` means "no SMTP", as if it were unset.
fn optional_secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Secret>, D::Error> {
    Ok(optional_text(deserializer)?.map(Secret::new))
}

fn optional_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let raw: Option<String> = Option::deserialize(deserializer)?;
    Ok(raw.map(|value| value.trim().to_owned()).filter(|value| !value.is_empty()))
}

#[cfg(test)]
mod tests {
    /// The built-in defaults alone must make a working configuration (`make run` sets nothing).
    #[test]
    fn the_defaults_load_without_any_environment() {
        let loaded = super::Settings::load().map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(loaded, Ok(()));
    }

    #[test]
    fn notifier_fixes_the_default_retry_schedule_makes_four_attempts_and_a_bad_one_names_its_key() {
        let Ok(mut settings) = super::Settings::load() else { panic!("defaults load") };
        assert_eq!(settings.retry_delays().map(|s| s.attempts()).map_err(|e| e.to_string()), Ok(4));
        settings.notification_retry_delays_ms = "2000,soon".into();
        let error = settings.validate().map_err(|e| e.to_string()).err().unwrap_or_default();
        assert!(error.contains("notification_retry_delays_ms") && error.contains("`soon`"), "{error}");
    }

    #[test]
    fn the_daily_summary_is_off_without_recipients_and_checks_its_values() {
        let Ok(mut settings) = super::Settings::load() else { panic!("defaults load") };
        assert_eq!(settings.daily_summary().map_err(|e| e.to_string()), Ok(None));
        settings.daily_summary_recipients = " ops@example.com, boss@example.com ".into();
        settings.daily_summary_at = "23:05".into();
        let summary = settings.daily_summary().map_err(|e| e.to_string());
        assert_eq!(
            summary.map(|s| s.map(|s| (s.at.to_string(), s.recipients))),
            Ok(Some((
                "23:05:00".to_owned(),
                vec!["ops@example.com".to_owned(), "boss@example.com".to_owned()]
            )))
        );
        settings.daily_summary_at = "25:00".into();
        assert!(settings.daily_summary().is_err());
        settings.daily_summary_at = "06:00".into();
        settings.daily_summary_recipients = "not an address".into();
        assert!(settings.daily_summary().is_err());
    }
}
