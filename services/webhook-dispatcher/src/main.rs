use clap::{Parser, Subcommand};
use webhook_dispatcher::settings::Settings;
use webhook_dispatcher::startup::{Application, migrate};

#[derive(Parser)]
#[command(name = "webhook-dispatcher", about = "Signed webhook deliveries to integrators' endpoints")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load()?;
    platform::telemetry::init(settings.common.log_format, "info");
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => migrate(&settings).await,
        Command::Serve => {
            let cancel = platform::shutdown::on_signal();
            let app =
                Application::build(settings, messaging::ConsumerOptions::new(webhook_dispatcher::SERVICE), cancel).await?;
            app.run_until_stopped().await
        }
    }
}
