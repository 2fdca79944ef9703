//! `koupang-outbox [--database-url URL] list|retry|park`: inspect and release the outbox rows the
//! relay parked (docs/events.md). A parked row holds back the later events of its aggregate, so
//! `retry` (after fixing the cause) lets the whole aggregate flow again, in order.

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "koupang-outbox",
    about = "Inspect and release outbox rows the relay parked"
)]
struct Cli {
    /// The service's database (the one holding its `outbox` table).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the parked rows, oldest first, with their last error and how many events wait behind.
    List {
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Release parked rows: due now, attempts reset; relays are woken.
    Retry {
        /// Outbox row ids (`list` shows them).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        ids: Vec<i64>,
        /// Every parked row.
        #[arg(long)]
        all: bool,
    },
    /// Park unpublished rows by hand (e.g. one that keeps crashing relays); their aggregates wait.
    Park {
        #[arg(required = true)]
        ids: Vec<i64>,
        /// Why, stored as the row's `last_error`.
        #[arg(long)]
        reason: String,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("koupang-outbox: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect(&cli.database_url)
        .await?;
    match cli.command {
        Command::List { limit } => {
            let rows = shared::outbox::parked(&pool, limit).await?;
            println!("id\tevent_id\ttopic\taggregate_id\tevent_type\tattempts\tparked_at\twaiting_behind\tlast_error");
            for r in &rows {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    r.id,
                    r.event_id,
                    r.topic,
                    r.aggregate_id,
                    r.event_type,
                    r.attempts,
                    r.parked_at.to_rfc3339(),
                    r.waiting_behind,
                    r.last_error
                        .as_deref()
                        .unwrap_or("")
                        .replace(['\t', '\n'], " ")
                );
            }
            eprintln!("{} parked row(s)", rows.len());
        }
        Command::Retry { ids, all } => {
            let which = (!all).then_some(ids.as_slice());
            let released = shared::outbox::retry_parked(&pool, which).await?;
            println!("released {} row(s): {released:?}", released.len());
            if let Some(asked) = which {
                let skipped: Vec<&i64> = asked.iter().filter(|i| !released.contains(i)).collect();
                if !skipped.is_empty() {
                    anyhow::bail!(
                        "not parked (unknown, published or already released): {skipped:?}"
                    );
                }
            }
        }
        Command::Park { ids, reason } => {
            let parked = shared::outbox::park(&pool, &ids, &reason).await?;
            println!("parked {} row(s): {parked:?}", parked.len());
            let skipped: Vec<&i64> = ids.iter().filter(|i| !parked.contains(i)).collect();
            if !skipped.is_empty() {
                anyhow::bail!("not parked (unknown, published or already parked): {skipped:?}");
            }
        }
    }
    Ok(())
}
