use payment::settings::Settings;
use payment::startup::{MIGRATIONS, build};

/// A start-up error ends the process with one line that says what to change
/// (`platform::exit`), not a `Debug` dump; `make run` quotes that line.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform::exit::report(payment::SERVICE, run().await)
}

async fn run() -> anyhow::Result<()> {
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
