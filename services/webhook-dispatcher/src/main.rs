use webhook_dispatcher::settings::Settings;
use webhook_dispatcher::startup::{MIGRATIONS, build};

/// A start-up error ends the process with one line that says what to change
/// (`platform::exit`), not a `Debug` dump; `make run` quotes that line.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform::exit::report(webhook_dispatcher::SERVICE, run().await)
}

async fn run() -> anyhow::Result<()> {
    let spec = chassis::ServiceSpec {
        bus: webhook_dispatcher::BUS,
        about: "Signed webhooks to integrators, retried until delivered",
        migrations: MIGRATIONS,
        load: Settings::load,
        common: |settings: &Settings| &settings.common,
    };
    chassis::main(spec, build).await
}
