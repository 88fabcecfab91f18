use inventory::settings::Settings;
use inventory::startup::{MIGRATIONS, build};

/// A start-up error ends the process with one line that says what to change
/// (`platform::exit`), not a `Debug` dump; `make run` quotes that line.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform::exit::report(inventory::SERVICE, run().await)
}

async fn run() -> anyhow::Result<()> {
    messaging::runtime::main(
        inventory::SERVICE,
        "Products, stock and reservations",
        Settings::load,
        |s: &Settings| &s.common,
        MIGRATIONS,
        build,
    )
    .await
}
