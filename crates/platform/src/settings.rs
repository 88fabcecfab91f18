//! Settings are loaded once, typed and validated: built-in defaults, then an optional TOML file
//! (`CONFIG_FILE`), then environment variables (`DATABASE_URL`, `AMQP_URL`, ...).

use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::fmt;

/// A value that must never reach a log line (passwords inside URLs, keys, tokens).
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("could not read settings: {0}")]
    Load(#[from] config::ConfigError),
    #[error("invalid setting `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// Loads `T` from `defaults` (key, value pairs), the optional file named by `CONFIG_FILE`, and
/// the environment. Environment keys are matched case-insensitively against field names, so
/// `DATABASE_URL` fills `database_url`.
pub fn load<T: DeserializeOwned>(defaults: &[(&str, &str)]) -> Result<T, SettingsError> {
    let mut builder = config::Config::builder();
    for (key, value) in defaults {
        builder = builder.set_default(*key, typed(value))?;
    }
    if let Ok(path) = std::env::var("CONFIG_FILE") {
        builder = builder.add_source(config::File::with_name(&path).required(true));
    }
    builder = builder.add_source(config::Environment::default().try_parsing(true));
    Ok(builder.build()?.try_deserialize()?)
}

/// Defaults are written as strings; give numbers and booleans their type, as the environment
/// source does with `try_parsing`, because fields inside a `#[serde(flatten)]` struct get no
/// coercion from `config`.
fn typed(value: &str) -> config::Value {
    if let Ok(integer) = value.parse::<i64>() {
        return integer.into();
    }
    match value {
        "true" => true.into(),
        "false" => false.into(),
        other => other.into(),
    }
}

/// Accepts a string or a bare number: the environment source parses `X=5000` into a number,
/// which a `String` field inside a flattened struct would otherwise refuse.
pub fn string_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Integer(i64),
    }
    Ok(match Raw::deserialize(deserializer)? {
        Raw::Text(text) => text,
        Raw::Integer(number) => number.to_string(),
    })
}

/// Splits `"1000, 5000"` into milliseconds; the settings every service shares use it for
/// retry schedules so one environment variable can carry a list.
pub fn parse_millis_list(key: &'static str, raw: &str) -> Result<Vec<std::time::Duration>, SettingsError> {
    raw.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<u64>().map(std::time::Duration::from_millis).map_err(|_| SettingsError::Invalid {
                key,
                reason: format!("`{part}` is not a number of milliseconds"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Inner {
        workers: usize,
        enabled: bool,
        name: String,
    }

    #[derive(Debug, Deserialize)]
    struct Outer {
        #[serde(flatten)]
        inner: Inner,
        limit: i64,
    }

    #[test]
    fn string_defaults_fill_typed_fields_even_through_flatten() {
        let loaded: Result<Outer, _> =
            load(&[("workers", "2"), ("enabled", "true"), ("name", "x"), ("limit", "50")]);
        let loaded = loaded.map_err(|e| e.to_string());
        assert_eq!(
            loaded.map(|o| (o.inner.workers, o.inner.enabled, o.inner.name, o.limit)),
            Ok((2, true, "x".to_owned(), 50))
        );
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "Secret(****)");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn millisecond_lists_parse_and_reject_garbage() {
        let parsed = parse_millis_list("retry", "10, 20,30").map_err(|e| e.to_string());
        assert_eq!(
            parsed,
            Ok(vec![
                std::time::Duration::from_millis(10),
                std::time::Duration::from_millis(20),
                std::time::Duration::from_millis(30)
            ])
        );
        let err = parse_millis_list("retry", "10,ten").map(|_| ()).map_err(|e| e.to_string());
        assert_eq!(err, Err("invalid setting `retry`: `ten` is not a number of milliseconds".into()));
    }
}
