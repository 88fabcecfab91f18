use payment::settings::Settings;
use payment::startup::{MIGRATIONS, build};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    messaging::runtime::main(
        payment::SERVICE,
        "Charges orders, once each",
        Settings::load,
        |s: &Settings| &s.common,
        MIGRATIONS,
        build,
    )
    .await
}
