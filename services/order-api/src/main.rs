use order_api::settings::Settings;
use order_api::startup::{MIGRATIONS, build};

/// A start-up error ends the process with one line that says what to change
/// (`platform::exit`), not a `Debug` dump; `make run` quotes that line.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform::exit::report(order_api::SERVICE, run().await)
}

async fn run() -> anyhow::Result<()> {
    let spec = chassis::ServiceSpec {
        bus: order_api::BUS,
        about: "The public gateway and the order saga",
        migrations: MIGRATIONS,
        load: Settings::load,
        common: |settings: &Settings| &settings.common,
    };
    chassis::main_with(spec, build, order_api::cli::run).await
}
