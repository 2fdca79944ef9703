//! Kafka plumbing shared by producers, consumers and tools: client settings that work with both
//! Apache Kafka and the local tansu broker, topic administration, and header helpers.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::FutureProducer;

/// The producer of every relay: idempotent, `acks=all`, bounded delivery time so a broker outage
/// surfaces as an error the relay backs off from instead of a send that never returns.
///
/// One record per batch: tansu 0.6 answers a fetch that starts inside a multi-record batch with
/// the *next* batch, so a consumer resuming from a committed offset mid-batch silently skipped
/// records (measured: the group-rebalance test lost 2–7 of 240 events). Single-record batches make
/// every offset a batch boundary; see docs/adr/003-local-broker.md.
pub fn producer(brokers: &str, client_id: &str) -> anyhow::Result<FutureProducer> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("client.id", client_id)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "2")
        .set("batch.num.messages", "1")
        .set("message.timeout.ms", "10000")
        .set("socket.keepalive.enable", "true")
        .create()
        .map_err(|e| anyhow::anyhow!("Kafka producer for {brokers}: {e}"))
}

/// Consumer settings: manual offset storage (stored only after the handler's transaction commits,
/// then committed in the background), and the timeouts measured to work with tansu.
pub fn consumer_config(brokers: &str, group: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "500")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("fetch.wait.max.ms", "10")
        .set("enable.partition.eof", "false");
    // librdkafka's own diagnostics (e.g. `cgrp,fetch`) for investigating group behaviour.
    if let Ok(debug) = std::env::var("KOUPANG_KAFKA_DEBUG") {
        c.set("debug", debug);
    }
    c
}

/// Create `topics` and their dead-letter topics if missing.
pub async fn ensure_topics(brokers: &str, topics: &[&str], partitions: i32) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|e| anyhow::anyhow!("Kafka admin for {brokers}: {e}"))?;
    let mut names: Vec<String> = Vec::new();
    for t in topics {
        names.push((*t).to_owned());
        if !t.ends_with(".dlq") {
            names.push(crate::events::topics::dlq(t));
        }
    }
    let new: Vec<NewTopic> = names
        .iter()
        .map(|n| NewTopic::new(n, partitions, TopicReplication::Fixed(1)))
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(new.iter(), &opts)
        .await
        .map_err(|e| anyhow::anyhow!("creating topics: {e}"))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("creating topic {name}: {code}"),
        }
    }
    Ok(())
}

/// Headers from name/value pairs.
pub fn headers(pairs: &[(&str, String)]) -> OwnedHeaders {
    pairs.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
        h.insert(Header {
            key: k,
            value: Some(v.as_bytes()),
        })
    })
}

/// All headers of a message as (name, UTF-8 value) pairs; binary values are lossily converted.
pub fn header_pairs<H: Headers>(headers: Option<&H>) -> Vec<(String, String)> {
    let Some(h) = headers else { return vec![] };
    h.iter()
        .map(|hd| {
            (
                hd.key.to_owned(),
                hd.value
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

pub fn header_value<H: Headers>(headers: Option<&H>, key: &str) -> Option<String> {
    header_pairs(headers)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}
