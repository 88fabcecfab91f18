use chassis::CommonSettings;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
    /// Product images (`PRODUCT_IMAGE_*`).
    #[serde(flatten)]
    pub images: crate::images::ImageSettings,
    /// Exchange rates (`RATES_*`).
    #[serde(flatten)]
    pub rates: crate::rates::RateSettings,
}

impl Settings {
    pub fn load() -> Result<Self, platform::settings::SettingsError> {
        let mut defaults = CommonSettings::defaults("inventory", 8081);
        defaults.extend(crate::images::ImageSettings::defaults());
        defaults.extend(crate::rates::RateSettings::defaults());
        chassis::load_settings(&defaults)
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
