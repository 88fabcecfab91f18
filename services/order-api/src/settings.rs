use crate::http::client::Cidr;
use chassis::CommonSettings;
use platform::settings::SettingsError;
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
    /// Forward the payment simulator's customer actions (`/payments/simulator/...`): only where
    /// payment runs the simulator (`make run`, docker-compose, tests), never in production.
    pub payment_simulator_enabled: bool,
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
    /// The largest product image file (inventory's setting of the same name: set both alike);
    /// an upload's body may be this plus its multipart framing, every other body
    /// `http_body_limit_bytes`.
    pub product_image_max_bytes: usize,
    /// An order `pending` or `processing` this long after its last status change is stuck.
    pub stuck_order_after_seconds: i64,
    /// Comma-separated CIDRs of the proxies in front of the gateway (`10.0.0.0/8, ::1/128`).
    /// `X-Forwarded-For` is believed only from these peers; empty: never (the peer address is
    /// the client). The client address keys rate limits, guest idempotency and login backoff.
    #[serde(default)]
    pub trusted_proxies: String,
    /// Unpaid (`pending` / `processing`) orders one client (an account, or a guest address) may
    /// have open at once; 0 turns the limit off.
    pub max_open_orders_per_client: i64,
    /// Exchange rates published more than this many days ago convert no order (422
    /// `exchange_rates_stale`); 0 turns the limit off. Inventory reads the same setting.
    pub rates_max_age_days: u32,
    /// A request holding an `Idempotency-Key` this long without an answer is taken to have died:
    /// a retry with the key takes it over. Must exceed the longest request (`upstream_timeout_ms`).
    pub idempotency_in_flight_timeout_ms: u64,
    /// Failed logins per account (normalised email) before each further attempt must wait.
    pub login_free_attempts_per_account: i64,
    /// Failed logins per client address before each further attempt must wait (higher: many
    /// people may share one address).
    pub login_free_attempts_per_client: i64,
    /// The longest wait the login backoff imposes (it doubles per failure up to this).
    pub login_backoff_max_seconds: i64,
    /// Where `/metrics` is served: a listener of its own, never the public API port.
    pub metrics_addr: String,
    /// The gateway's public base URL, for links in messages (a guest's invoice link).
    pub public_base_url: String,
    /// The lifetime of the internal token the gateway signs for each request it forwards (the
    /// services accept nothing else): how long a revoked session can still act behind the
    /// gateway. At most 60.
    pub jwt_internal_ttl_seconds: i64,
    /// How often an idle live-update stream (`/orders/.../events`) gets a comment line, so
    /// proxies keep it open and a client that went away is noticed.
    pub live_heartbeat_ms: u64,
    /// Live-update streams one client (an account, or a guest's address) may hold open on one
    /// gateway replica; one more is a 429.
    pub live_max_streams_per_client: usize,
    /// Whether an account must verify its email (the link sent at registration) before it may
    /// order: false for `make run`, true in the production overlay.
    pub require_verified_email: bool,
    /// How long the link in the verification email works.
    pub email_verification_ttl_seconds: i64,
    /// How long the link in a password-reset email works.
    pub password_reset_ttl_seconds: i64,
}

impl Settings {
    pub fn load() -> Result<Self, platform::settings::SettingsError> {
        let mut defaults = CommonSettings::defaults("order_api", 8080);
        defaults.extend([
            ("inventory_url", "http://127.0.0.1:8081".to_owned()),
            ("payment_url", "http://127.0.0.1:8082".to_owned()),
            ("notifier_url", "http://127.0.0.1:8083".to_owned()),
            ("webhooks_url", "http://127.0.0.1:8084".to_owned()),
            ("payment_simulator_enabled", "false".to_owned()),
            ("max_items_per_order", "50".to_owned()),
            ("max_quantity_per_line", "1000".to_owned()),
            ("upstream_timeout_ms", "10000".to_owned()),
            ("guest_checkout", "true".to_owned()),
            ("rate_limit_per_second", "100".to_owned()),
            ("rate_limit_burst", "200".to_owned()),
            ("json_max_depth", "32".to_owned()),
            ("product_image_max_bytes", (5 * 1024 * 1024).to_string()),
            ("stuck_order_after_seconds", "900".to_owned()),
            ("max_open_orders_per_client", "10".to_owned()),
            ("rates_max_age_days", "5".to_owned()),
            ("idempotency_in_flight_timeout_ms", "60000".to_owned()),
            ("login_free_attempts_per_account", "5".to_owned()),
            ("login_free_attempts_per_client", "50".to_owned()),
            ("login_backoff_max_seconds", "900".to_owned()),
            ("metrics_addr", "127.0.0.1:9464".to_owned()),
            ("public_base_url", "http://127.0.0.1:8080".to_owned()),
            ("jwt_internal_ttl_seconds", platform::auth::INTERNAL_TTL_SECONDS.to_string()),
            ("live_heartbeat_ms", "15000".to_owned()),
            ("live_max_streams_per_client", "5".to_owned()),
            ("require_verified_email", "false".to_owned()),
            ("email_verification_ttl_seconds", "86400".to_owned()),
            ("password_reset_ttl_seconds", "3600".to_owned()),
        ]);
        let settings: Self = chassis::load_settings(&defaults)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Names the first bad key; called by `load` and again by `startup::build`.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.trusted_proxy_list()?;
        crate::http::guards::origin_list(&self.cors_allowed_origins)
            .map_err(|reason| SettingsError::Invalid { key: "cors_allowed_origins", reason })?;
        let invalid = |key, reason: &str| Err(SettingsError::Invalid { key, reason: reason.to_owned() });
        if self.max_open_orders_per_client < 0 {
            return invalid("max_open_orders_per_client", "must be 0 (off) or more");
        }
        if self.idempotency_in_flight_timeout_ms == 0 {
            return invalid("idempotency_in_flight_timeout_ms", "must be above 0 (e.g. 60000)");
        }
        if self.login_free_attempts_per_account < 1 || self.login_free_attempts_per_client < 1 {
            return invalid(
                "login_free_attempts_per_account",
                "both login_free_attempts_* must be 1 or more",
            );
        }
        if !(1..=platform::auth::INTERNAL_TTL_SECONDS).contains(&self.jwt_internal_ttl_seconds) {
            return invalid(
                "jwt_internal_ttl_seconds",
                "must be between 1 and 60 (revocation reaches the services within it)",
            );
        }
        if !(1..=86_400).contains(&self.login_backoff_max_seconds) {
            return invalid("login_backoff_max_seconds", "must be between 1 and 86400");
        }
        if !(self.public_base_url.starts_with("https://") || self.public_base_url.starts_with("http://"))
            || self.public_base_url.ends_with('/')
        {
            return invalid("public_base_url", "must be an http(s) URL without a trailing slash");
        }
        if !(100..=300_000).contains(&self.live_heartbeat_ms) {
            return invalid("live_heartbeat_ms", "must be between 100 and 300000");
        }
        if self.live_max_streams_per_client == 0 {
            return invalid("live_max_streams_per_client", "must be 1 or more");
        }
        if !(60..=30 * 86_400).contains(&self.email_verification_ttl_seconds) {
            return invalid("email_verification_ttl_seconds", "must be between 60 and 2592000 (30 days)");
        }
        if !(60..=86_400).contains(&self.password_reset_ttl_seconds) {
            return invalid("password_reset_ttl_seconds", "must be between 60 and 86400 (a day)");
        }
        Ok(())
    }

    pub fn live_policy(&self) -> crate::live::LivePolicy {
        crate::live::LivePolicy {
            heartbeat: std::time::Duration::from_millis(self.live_heartbeat_ms),
            max_streams_per_client: self.live_max_streams_per_client,
        }
    }

    pub fn account_policy(&self) -> crate::accounts::verification::AccountPolicy {
        crate::accounts::verification::AccountPolicy {
            public_base_url: self.public_base_url.clone(),
            verification_ttl: chrono::Duration::seconds(self.email_verification_ttl_seconds),
            reset_ttl: chrono::Duration::seconds(self.password_reset_ttl_seconds),
            require_verified_email: self.require_verified_email,
        }
    }

    /// The parsed `trusted_proxies`.
    pub fn trusted_proxy_list(&self) -> Result<Vec<Cidr>, SettingsError> {
        self.trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry.parse::<Cidr>().map_err(|reason| SettingsError::Invalid {
                    key: "trusted_proxies",
                    reason: format!("`{entry}`: {reason}; write CIDRs like 10.0.0.0/8 or fd00::/8"),
                })
            })
            .collect()
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

    #[test]
    fn a_bad_trusted_proxy_names_the_key() {
        let Ok(mut settings) = super::Settings::load() else { panic!("defaults load") };
        settings.trusted_proxies = "10.0.0.0/8, 300.1.1.1/8".into();
        let error = settings.validate().map_err(|e| e.to_string());
        assert!(
            matches!(&error, Err(e) if e.contains("trusted_proxies") && e.contains("300.1.1.1/8")),
            "{error:?}"
        );
        settings.trusted_proxies = "10.0.0.0/8, ::1".into();
        assert_eq!(settings.trusted_proxy_list().map(|l| l.len()).map_err(|e| e.to_string()), Ok(2));
    }
}
