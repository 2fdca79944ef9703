//! The identity binary: serve the API (default) or run an operator command (see `cli`).

use identity::cli::{self, Command};
use identity::{Application, IdentityConfig};

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("identity: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match cli::parse(&argv)? {
        Command::GenKeys { out } => cli::gen_keys(&out),
        Command::CreateUser { args, role } => {
            let config = IdentityConfig::load()?;
            cli::create_user(&config, &args, role).await
        }
        Command::Serve => {
            let config = IdentityConfig::load()?;
            let _telemetry = shared::telemetry::init("identity", &config.common)?;
            let app = Application::build(config).await?;
            app.run_until_stopped().await?;
            tracing::info!("identity stopped");
            Ok(())
        }
    }
}
