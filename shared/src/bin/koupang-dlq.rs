//! `koupang-dlq redrive --topic orders.events.dlq [--brokers 127.0.0.1:9092] [--group G] [--idle-ms 3000]`
//! puts dead letters back on the topic they came from (see `shared::dlq`).

use std::time::Duration;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("koupang-dlq: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("redrive") {
        anyhow::bail!("usage: koupang-dlq redrive --topic <topic>.dlq [--brokers B] [--group G] [--idle-ms N]");
    }
    let get = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let topic = get("--topic").ok_or_else(|| anyhow::anyhow!("--topic is required"))?;
    if !topic.ends_with(".dlq") {
        anyhow::bail!("--topic must name a dead-letter topic (ending in .dlq)");
    }
    let brokers = get("--brokers")
        .or_else(|| std::env::var("KAFKA_BROKERS").ok())
        .unwrap_or_else(|| "127.0.0.1:9092".into());
    let group = get("--group").unwrap_or_else(|| shared::dlq::DEFAULT_GROUP.into());
    let idle = Duration::from_millis(get("--idle-ms").map_or(Ok(3000), |v| v.parse())?);
    let moved = shared::dlq::redrive(&brokers, &topic, &group, idle).await?;
    println!("re-drove {moved} message(s) from {topic}");
    Ok(())
}
