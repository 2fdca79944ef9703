//! The identity binary: serve the API (default) or run an operator command (see `cli`).

use clap::Parser;
use identity::cli::{self, Cli, Command};
use identity::{Application, IdentityConfig};

/// mimalloc, not glibc's malloc: +40% on cached reads, and no per-thread arenas that keep
/// freed memory (docs/adr/015-allocator-and-hashing-threads.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("identity: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    match Cli::parse().command() {
        Command::GenKeys { out } => cli::gen_keys(&out),
        Command::CreateAdmin(user) => {
            let config = IdentityConfig::load()?;
            cli::create_user(&config, &user, shared::auth::Role::Admin).await
        }
        Command::CreateUser { role, user } => {
            let config = IdentityConfig::load()?;
            cli::create_user(&config, &user, role).await
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
