use webhook_dispatcher::settings::Settings;
use webhook_dispatcher::startup::{MIGRATIONS, build};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    messaging::runtime::main(
        webhook_dispatcher::SERVICE,
        "Signed webhooks to integrators, retried until delivered",
        Settings::load,
        |s: &Settings| &s.common,
        MIGRATIONS,
        build,
    )
    .await
}
