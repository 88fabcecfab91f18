use order_api::settings::Settings;
use order_api::startup::{MIGRATIONS, build};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    messaging::runtime::main(
        order_api::SERVICE,
        "The public gateway and the order saga",
        Settings::load,
        |s: &Settings| &s.common,
        MIGRATIONS,
        build,
    )
    .await
}
