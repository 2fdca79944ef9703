//! `koupang-audit` (`make audit`): run the invariant auditor against a running stack and print
//! what it finds; exit 1 when anything is broken. Reads the same variables the services do, with
//! `make up`'s values as defaults.

use std::time::Duration;

use clap::Parser;

#[derive(Parser)]
#[command(
    about = "Check the stack's invariants: orders settled, stock conserved, ledger balanced, outboxes drained, no dead letters"
)]
struct Args {
    #[arg(
        long,
        env = "CATALOG_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/catalog"
    )]
    catalog_db: String,
    #[arg(
        long,
        env = "ORDER_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/orders"
    )]
    order_db: String,
    #[arg(
        long,
        env = "PAYMENT_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/payment"
    )]
    payment_db: String,
    #[arg(long, env = "CATALOG_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    #[arg(long, env = "CATALOG_KAFKA_TOPIC_PREFIX", default_value = "")]
    topic_prefix: String,
    /// Audit again until clean or this many seconds have passed (events still in flight settle).
    #[arg(long, default_value_t = 0)]
    wait_secs: u64,
}

async fn pool(url: &str) -> anyhow::Result<sqlx::PgPool> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|e| anyhow::anyhow!("connecting to {url}: {e}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let target = auditor::Target {
        catalog_db: pool(&args.catalog_db).await?,
        order_db: pool(&args.order_db).await?,
        payment_db: pool(&args.payment_db).await?,
        brokers: args.brokers,
        topic_prefix: args.topic_prefix,
    };
    let problems = auditor::audit_when_quiet(&target, Duration::from_secs(args.wait_secs)).await;
    if problems.is_empty() {
        println!("audit: clean (orders settled, stock conserved, ledger balanced, outboxes drained, no dead letters)");
        return Ok(());
    }
    println!("audit: {} problems", problems.len());
    for p in &problems {
        println!("- {p}");
    }
    std::process::exit(1);
}
