use order_api::settings::Settings;
use order_api::startup::{MIGRATIONS, build};

/// A start-up error ends the process with one line that says what to change
/// (`platform::exit`), not a `Debug` dump; `make run` quotes that line.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    platform::exit::report(order_api::SERVICE, run().await)
}

async fn run() -> anyhow::Result<()> {
    let mut args = std::env::args();
    if std::env::args().nth(1).as_deref() == Some("create-admin") {
        args.next();
        return order_api::cli::create_admin(args).await;
    }
    if std::env::args().nth(1).as_deref() == Some("jwt-keys") {
        args.next();
        return order_api::cli::jwt_keys(args);
    }
    messaging::runtime::main(
        order_api::SERVICE,
        "The public gateway and the order saga (also: `order-api create-admin --email E`, `order-api jwt-keys`)",
        Settings::load,
        |s: &Settings| &s.common,
        MIGRATIONS,
        build,
    )
    .await
}
