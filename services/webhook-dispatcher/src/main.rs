use webhook_dispatcher::settings::Settings;
use webhook_dispatcher::startup::{MIGRATIONS, build};

/// A start-up error ends the process with one line that says what to change
/// (`platform::exit`), not a `Debug` dump; `make run` quotes that line.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform::exit::report(webhook_dispatcher::SERVICE, run().await)
}

async fn run() -> anyhow::Result<()> {
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
