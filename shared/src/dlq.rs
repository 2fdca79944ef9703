//! Re-driving dead letters: read `<topic>.dlq` and put each message back on the topic it came
//! from, with its original key, payload and headers (the `dlq_*` headers are dropped, a
//! `redriven_at` header added). The re-drive has its own consumer group, so it resumes where it
//! stopped and never re-drives the same dead letter twice.

use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;

pub const DEFAULT_GROUP: &str = "koupang-dlq-redrive";

/// Move every message now on `dlq_topic` back to its source topic; stops after `idle` without a
/// new message. Returns how many were re-driven.
pub async fn redrive(
    brokers: &str,
    dlq_topic: &str,
    group: &str,
    idle: Duration,
) -> anyhow::Result<usize> {
    let mut cfg = crate::kafka::consumer_config(brokers, group);
    cfg.set("enable.auto.commit", "false");
    let consumer: StreamConsumer<crate::kafka::TrackAssignments> =
        cfg.create_with_context(crate::kafka::TrackAssignments::default())?;
    consumer.subscribe(&[dlq_topic])?;
    let producer = crate::kafka::producer(brokers, "koupang-dlq-redrive")?;
    let mut moved = 0;
    // Where the previous re-drive stopped, per partition. A rewind (see `kafka::resume_check`) can
    // bring back messages before it; those were re-driven already and are skipped here.
    let mut resume_at: std::collections::HashMap<i32, i64> = Default::default();
    loop {
        let msg = match tokio::time::timeout(idle, consumer.recv()).await {
            Err(_) => break,
            Ok(Err(e)) => anyhow::bail!("reading {dlq_topic}: {e}"),
            Ok(Ok(m)) => m,
        };
        if !crate::kafka::resume_check(&consumer, msg.topic(), msg.partition(), msg.offset())? {
            continue;
        }
        let partition = msg.partition();
        let from = match resume_at.get(&partition) {
            Some(o) => *o,
            None => {
                let mut tpl = rdkafka::TopicPartitionList::new();
                tpl.add_partition(dlq_topic, partition);
                let committed = consumer.committed_offsets(tpl, Duration::from_secs(10))?;
                let offset = committed
                    .find_partition(dlq_topic, partition)
                    .and_then(|e| match e.offset() {
                        rdkafka::Offset::Offset(o) => Some(o),
                        _ => None,
                    })
                    .unwrap_or(0);
                resume_at.insert(partition, offset);
                offset
            }
        };
        if msg.offset() < from {
            continue;
        }
        let headers = crate::kafka::header_pairs(msg.headers());
        let target = headers
            .iter()
            .find(|(k, _)| k == "dlq_source_topic")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| dlq_topic.trim_end_matches(".dlq").to_owned());
        let mut kept: Vec<(&str, String)> = headers
            .iter()
            .filter(|(k, _)| !k.starts_with("dlq_"))
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        kept.push(("redriven_at", chrono::Utc::now().to_rfc3339()));
        let mut record =
            FutureRecord::<[u8], [u8]>::to(&target).headers(crate::kafka::headers(&kept));
        if let Some(k) = msg.key() {
            record = record.key(k);
        }
        if let Some(p) = msg.payload() {
            record = record.payload(p);
        }
        producer
            .send(record, Timeout::After(Duration::from_secs(10)))
            .await
            .map_err(|e| anyhow::anyhow!("re-publishing to {target}: {e}"))?;
        // Committed one by one: an interrupted re-drive repeats at most one message, which the
        // consumers' inbox absorbs.
        consumer.commit_message(&msg, CommitMode::Sync)?;
        moved += 1;
    }
    Ok(moved)
}
