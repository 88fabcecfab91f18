use messaging::CommonSettings;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(flatten)]
    pub common: CommonSettings,
}

impl Settings {
    pub fn load() -> Result<Self, platform::settings::SettingsError> {
        messaging::runtime::load_settings(&CommonSettings::defaults("payment", 8082))
    }
}
