use inventory::settings::Settings;
use inventory::startup::{MIGRATIONS, build};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
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
