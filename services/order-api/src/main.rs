use clap::{Parser, Subcommand};
use order_api::settings::Settings;
use order_api::startup::{Application, migrate};

#[derive(Parser)]
#[command(name = "order-api", about = "The public gateway and the order saga")]
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
            let app = Application::build(settings, messaging::ConsumerOptions::new(order_api::SERVICE), cancel).await?;
            app.run_until_stopped().await
        }
    }
}
