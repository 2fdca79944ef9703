//! The cart binary: load config, start telemetry, serve until SIGTERM.

use cart::{Application, CartConfig};

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("cart: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let config = CartConfig::load()?;
    let _telemetry = shared::telemetry::init("cart", &config.common)?;
    let app = Application::build(config).await?;
    app.run_until_stopped().await?;
    tracing::info!("cart stopped");
    Ok(())
}
