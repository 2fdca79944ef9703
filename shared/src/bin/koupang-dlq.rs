//! `koupang-dlq redrive --topic orders.events.dlq [--brokers 127.0.0.1:9092] [--group G] [--idle-ms 3000]`
//! puts dead letters back on the topic they came from (see `shared::dlq`).

use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "koupang-dlq",
    about = "Inspect and re-drive Koupang's dead-letter topics"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Put every dead letter of a `.dlq` topic back on the topic it came from (once per group).
    Redrive {
        /// The dead-letter topic, e.g. `orders.events.dlq`.
        #[arg(long, value_parser = dlq_topic)]
        topic: String,
        #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
        brokers: String,
        /// The re-drive tool's consumer group (each dead letter is re-driven once per group).
        #[arg(long, default_value = shared::dlq::DEFAULT_GROUP)]
        group: String,
        /// Stop after this long without a new dead letter.
        #[arg(long, default_value_t = 3000)]
        idle_ms: u64,
    },
}

fn dlq_topic(s: &str) -> Result<String, String> {
    if s.ends_with(".dlq") {
        Ok(s.to_owned())
    } else {
        Err("must name a dead-letter topic (ending in .dlq)".to_owned())
    }
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("koupang-dlq: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Redrive {
            topic,
            brokers,
            group,
            idle_ms,
        } => {
            let moved =
                shared::dlq::redrive(&brokers, &topic, &group, Duration::from_millis(idle_ms))
                    .await?;
            println!("re-drove {moved} message(s) from {topic}");
            Ok(())
        }
    }
}
