use messaging::CommonSettings;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
    /// Base URL of `inventory` (products are forwarded there).
    pub inventory_url: String,
    /// Base URL of `payment` (payment views, provider callbacks).
    pub payment_url: String,
    /// Base URL of `notifier` (notification admin routes).
    pub notifier_url: String,
    /// Base URL of `webhook-dispatcher` (webhook endpoints and deliveries).
    pub webhooks_url: String,
    pub max_items_per_order: usize,
    pub max_quantity_per_line: i64,
    pub upstream_timeout_ms: u64,
    /// Orders without an account (name and email only); such an order is readable by its id.
    pub guest_checkout: bool,
    /// The first admin, created at start-up when no account has this email (never overwritten).
    #[serde(default)]
    pub bootstrap_admin_email: Option<String>,
    #[serde(default)]
    pub bootstrap_admin_password: Option<platform::settings::Secret>,
    /// Requests per second per client (account, or address when anonymous); 0 turns it off.
    pub rate_limit_per_second: f64,
    pub rate_limit_burst: f64,
    /// Comma-separated origins allowed by CORS (`*` for any); empty: none.
    #[serde(default)]
    pub cors_allowed_origins: String,
    pub json_max_depth: usize,
    /// An order `pending` or `processing` this long after its last status change is stuck.
    pub stuck_order_after_seconds: i64,
}

impl Settings {
    pub fn load() -> Result<Self, platform::settings::SettingsError> {
        let mut defaults = CommonSettings::defaults("order_api", 8080);
        defaults.extend([
            ("inventory_url", "http://127.0.0.1:8081".to_owned()),
            ("payment_url", "http://127.0.0.1:8082".to_owned()),
            ("notifier_url", "http://127.0.0.1:8083".to_owned()),
            ("webhooks_url", "http://127.0.0.1:8084".to_owned()),
            ("max_items_per_order", "50".to_owned()),
            ("max_quantity_per_line", "1000".to_owned()),
            ("upstream_timeout_ms", "10000".to_owned()),
            ("guest_checkout", "true".to_owned()),
            ("rate_limit_per_second", "100".to_owned()),
            ("rate_limit_burst", "200".to_owned()),
            ("json_max_depth", "32".to_owned()),
            ("stuck_order_after_seconds", "900".to_owned()),
        ]);
        messaging::runtime::load_settings(&defaults)
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
