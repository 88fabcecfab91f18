use clap::Subcommand;
use notifier::retry::RetryFailed;
use notifier::settings::Settings;
use notifier::startup::{MIGRATIONS, build};

/// The notifier's own commands, besides the chassis's `serve` and `migrate`.
#[derive(Subcommand)]
enum Own {
    /// Move failed notifications back to pending, so they are sent again
    RetryFailed(RetryFailed),
}

/// A start-up error ends the process with one line that says what to change
/// (`platform::exit`), not a `Debug` dump; `make run` quotes that line.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform::exit::report(notifier::SERVICE, run().await)
}

async fn run() -> anyhow::Result<()> {
    let spec = chassis::ServiceSpec {
        bus: notifier::BUS,
        about: "Invoices and notices by email and SMS, once each",
        migrations: MIGRATIONS,
        load: Settings::load,
        common: |settings: &Settings| &settings.common,
    };
    chassis::main_with(spec, build, async |own: Own| match own {
        Own::RetryFailed(request) => {
            let settings = Settings::load()?;
            platform::telemetry::init(settings.common.log_format, "info");
            let retried = notifier::retry::run_cli(&settings, &request).await?;
            println!("{}", serde_json::json!({ "retried": retried }));
            Ok(())
        }
    })
    .await
}
