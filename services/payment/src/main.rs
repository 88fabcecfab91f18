use payment::settings::Settings;
use payment::startup::{MIGRATIONS, build};

/// A start-up error ends the process with one line that says what to change
/// (`platform::exit`), not a `Debug` dump; `make run` quotes that line.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform::exit::report(payment::SERVICE, run().await)
}

async fn run() -> anyhow::Result<()> {
    let spec = chassis::ServiceSpec {
        bus: payment::BUS,
        about: "Charges orders, once each",
        migrations: MIGRATIONS,
        load: Settings::load,
        common: |settings: &Settings| &settings.common,
    };
    chassis::main(spec, build).await
}
