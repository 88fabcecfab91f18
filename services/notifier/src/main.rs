use notifier::settings::Settings;
use notifier::startup::{MIGRATIONS, build};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    messaging::runtime::main(
        notifier::SERVICE,
        "Invoices and notices by email, once each",
        Settings::load,
        |s: &Settings| &s.common,
        MIGRATIONS,
        build,
    )
    .await
}
