use clap::{Parser, Subcommand};
use notifier::retry::RetryFailed;
use notifier::settings::Settings;
use notifier::startup::{MIGRATIONS, build};

const ABOUT: &str = "Invoices and notices by email and SMS, once each";

#[derive(Parser)]
#[command(name = "notifier", about = ABOUT, version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default)
    Serve,
    /// Apply pending database migrations and exit
    Migrate,
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
    if let Some(Command::RetryFailed(request)) = Cli::parse().command {
        let settings = Settings::load()?;
        platform::telemetry::init(settings.common.log_format, "info");
        let retried = notifier::retry::run_cli(&settings, &request).await?;
        println!("{}", serde_json::json!({ "retried": retried }));
        return Ok(());
    }
    // `serve` and `migrate` are the runtime's, which reads the command line again.
    messaging::runtime::main(
        notifier::SERVICE,
        ABOUT,
        Settings::load,
        |s: &Settings| &s.common,
        MIGRATIONS,
        build,
    )
    .await
}
