use chassis::CommonSettings;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
}

impl Settings {
    pub fn load() -> Result<Self, platform::settings::SettingsError> {
        chassis::load_settings(&CommonSettings::defaults("inventory", 8081))
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
