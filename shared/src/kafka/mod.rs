//! Kafka plumbing shared by producers, consumers and tools: client settings that work with both
//! Apache Kafka and the local tansu broker, topic administration, and header helpers.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::Offset;

mod publisher;
pub use publisher::{Delivered, Publisher, Reports, POLL_WINDOW};

/// The producer of every relay: idempotent, `acks=all`, bounded delivery time so a broker outage
/// surfaces as an error the relay backs off from instead of a send that never returns.
///
/// Batches hold at most `MAX_BATCH_RECORDS` records, which `resume_check` relies on.
pub fn producer(brokers: &str, client_id: &str) -> anyhow::Result<Publisher> {
    producer_with(brokers, client_id, DELIVERY_TIMEOUT, true)
}

/// How long a producer tries to deliver a record before the send fails.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// `producer` with another delivery timeout (tests make outages longer than it in seconds) and,
/// for tansu, without idempotence (see `CommonConfig::kafka_idempotent_producer`).
pub fn producer_with(
    brokers: &str,
    client_id: &str,
    delivery_timeout: Duration,
    idempotent: bool,
) -> anyhow::Result<Publisher> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("client.id", client_id)
        .set("enable.idempotence", idempotent.to_string())
        .set("acks", "all")
        .set("linger.ms", "1")
        .set("batch.num.messages", MAX_BATCH_RECORDS.to_string())
        .set(
            "message.timeout.ms",
            delivery_timeout.as_millis().to_string(),
        )
        .set("socket.keepalive.enable", "true");
    Publisher::create(&config).map_err(|e| anyhow::anyhow!("Kafka producer for {brokers}: {e}"))
}

/// Most records a producer puts in one batch.
pub const MAX_BATCH_RECORDS: i64 = 64;

/// Consumer context that remembers which partitions were newly assigned, so the first message of
/// each can be checked by `resume_check`, and whether the consumer is currently a group member
/// (its last rebalance was an assignment, possibly empty), for the consumer's watchdog.
#[derive(Default)]
pub struct TrackAssignments {
    fresh: std::sync::Mutex<std::collections::HashSet<(String, i32)>>,
    /// Committed offsets fetched for fresh partitions, until their first message is checked.
    committed: std::sync::Mutex<std::collections::HashMap<(String, i32), Option<i64>>>,
    member: std::sync::atomic::AtomicBool,
    /// Label of the `events_consumer_revocations_total` counter (none when empty).
    group: String,
    /// Partitions currently assigned (shared with whoever watches the consumer).
    assigned: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Fetch requests sent, from librdkafka's statistics (when `statistics.interval.ms` is set).
    fetches: std::sync::Arc<FetchStats>,
}

impl TrackAssignments {
    /// A context that counts revocations in `events_consumer_revocations_total{group}`.
    /// `assigned` follows the number of partitions assigned to it.
    pub fn for_group(
        group: &str,
        assigned: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    ) -> Self {
        Self {
            group: group.to_owned(),
            assigned,
            ..Self::default()
        }
    }

    /// Keep `fetches` up to date with each statistics report of this client.
    pub fn counting_fetches(mut self, fetches: std::sync::Arc<FetchStats>) -> Self {
        self.fetches = fetches;
        self
    }

    /// True between an assignment and the next revocation or rebalance error.
    pub fn is_member(&self) -> bool {
        self.member.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A consumer's fetch requests so far and how many statistics reports said so.
#[derive(Debug, Default)]
pub struct FetchStats {
    pub requests: std::sync::atomic::AtomicU64,
    pub reports: std::sync::atomic::AtomicU64,
}

impl ClientContext for TrackAssignments {
    fn stats_raw(&self, statistics: &[u8]) {
        // Only the per-broker request counts are read; the full statistics are large.
        #[derive(serde::Deserialize)]
        struct Stats {
            brokers: std::collections::HashMap<String, Broker>,
        }
        #[derive(serde::Deserialize)]
        struct Broker {
            #[serde(default)]
            req: std::collections::HashMap<String, u64>,
        }
        match serde_json::from_slice::<Stats>(statistics) {
            Ok(stats) => {
                let fetches = stats
                    .brokers
                    .values()
                    .map(|b| b.req.get("Fetch").copied().unwrap_or(0))
                    .sum();
                self.fetches
                    .requests
                    .store(fetches, std::sync::atomic::Ordering::SeqCst);
                self.fetches
                    .reports
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            Err(e) => tracing::debug!(error = %e, "librdkafka statistics not understood"),
        }
    }
}

impl ConsumerContext for TrackAssignments {
    /// rust-rdkafka's default asks librdkafka for the rebalance protocol, then assigns: both are
    /// requests to the group's thread, which drops them unanswered once the group has terminated,
    /// so a rebalance event still queued when a dropped consumer finishes closing made the drop
    /// wait forever (seen: a test hung at shutdown for ten minutes; librdkafka issue 4041). Our
    /// groups use the default eager assignors, so the protocol is known, and a terminated group
    /// has nothing left to assign.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: rdkafka::types::RDKafkaRespErr,
        tpl: &mut rdkafka::TopicPartitionList,
    ) {
        use rdkafka::types::RDKafkaRespErr as E;
        let rebalance = match err {
            E::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => Rebalance::Assign(tpl),
            E::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => Rebalance::Revoke(tpl),
            other => Rebalance::Error(KafkaError::Rebalance(other.into())),
        };
        self.pre_rebalance(consumer, &rebalance);
        if !consumer.closed() {
            let done = match &rebalance {
                Rebalance::Assign(assigned) => consumer.assign(assigned),
                _ => consumer.unassign(),
            };
            if let Err(e) = done {
                tracing::warn!(error = %e, "applying a rebalance failed");
            }
        }
        self.post_rebalance(consumer, &rebalance);
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let member = matches!(rebalance, Rebalance::Assign(_));
        self.member
            .store(member, std::sync::atomic::Ordering::SeqCst);
        let assigned = match rebalance {
            Rebalance::Assign(a) => a.count(),
            _ => 0,
        };
        self.assigned
            .store(assigned, std::sync::atomic::Ordering::SeqCst);
        if let Rebalance::Revoke(revoked) = rebalance {
            if !self.group.is_empty() && revoked.count() > 0 {
                metrics::counter!("events_consumer_revocations_total", "group" => self.group.clone())
                    .increment(1);
            }
        }
        if let Rebalance::Assign(assigned) = rebalance {
            if let Ok(mut cache) = self.committed.lock() {
                // Offsets fetched for an earlier assignment are stale now.
                cache.clear();
            }
            if let Ok(mut fresh) = self.fresh.lock() {
                for e in assigned.elements() {
                    fresh.insert((e.topic().to_owned(), e.partition()));
                }
            }
        }
    }
}

/// Check the first message of a newly assigned partition against the group's committed offset.
/// `Ok(false)` when the broker skipped records and the consumer was moved back (drop this
/// message; the skipped records and it come again). `Err` when the check could not be made (the
/// committed offset stayed unavailable after a few tries, or the rewind failed): the caller must
/// not go on with this partition (the consumer rebuilds itself; the re-drive tool stops), because
/// going on could skip records. The partition is marked unchecked again, so the next message of
/// it is checked too.
///
/// Why: tansu 0.6 answers a fetch that starts *inside* a multi-record batch with the *next* batch,
/// so a consumer resuming from a committed offset in the middle of a batch silently skipped the
/// rest of it (measured: the group-rebalance test lost 2–7 of 240 events). Seeking one whole batch
/// (`MAX_BATCH_RECORDS`) before the committed offset lands on or before the batch that holds it;
/// the records before it are redelivered and the inbox absorbs them. With Apache Kafka the first
/// message is always the committed offset and nothing happens. See docs/adr/003-local-broker.md.
pub fn resume_check<C: Consumer<TrackAssignments>>(
    consumer: &C,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<bool, KafkaError> {
    let key = (topic.to_owned(), partition);
    let (is_fresh, all_fresh) = match consumer.context().fresh.lock() {
        Ok(mut f) => (f.remove(&key), f.iter().cloned().collect::<Vec<_>>()),
        Err(_) => (false, vec![]),
    };
    if !is_fresh {
        return Ok(true);
    }
    let unchecked = |e: KafkaError| {
        // Check this partition again on its next message.
        if let Ok(mut f) = consumer.context().fresh.lock() {
            f.insert((topic.to_owned(), partition));
        }
        e
    };
    let cached = consumer
        .context()
        .committed
        .lock()
        .ok()
        .and_then(|mut c| c.remove(&key));
    let committed = match cached {
        Some(c) => c,
        None => {
            // One round trip for every partition of the new assignment still to be checked.
            let mut tpl = rdkafka::TopicPartitionList::new();
            tpl.add_partition(topic, partition);
            for (t, p) in &all_fresh {
                tpl.add_partition(t, *p);
            }
            let mut tries = 0;
            let list = loop {
                tries += 1;
                match consumer.committed_offsets(tpl.clone(), Duration::from_secs(5)) {
                    Ok(list) => break list,
                    Err(e) if tries < 3 => {
                        tracing::warn!(error = %e, topic, partition, tries, "committed offset unavailable; retrying");
                        std::thread::sleep(Duration::from_millis(200 * tries));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, topic, partition, "committed offset unavailable; not going on with this partition");
                        return Err(unchecked(e));
                    }
                }
            };
            let as_offset =
                |e: rdkafka::topic_partition_list::TopicPartitionListElem<'_>| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                };
            if let Ok(mut cache) = consumer.context().committed.lock() {
                for (t, p) in &all_fresh {
                    if let Some(e) = list.find_partition(t, *p) {
                        cache.insert((t.clone(), *p), as_offset(e));
                    }
                }
            }
            list.find_partition(topic, partition).and_then(as_offset)
        }
    };
    match committed {
        Some(c) if offset > c => {
            let start = (c - MAX_BATCH_RECORDS).max(0);
            tracing::warn!(
                topic,
                partition,
                committed = c,
                first = offset,
                rewind_to = start,
                "broker skipped records after the committed offset; rewinding"
            );
            match consumer.seek(
                topic,
                partition,
                Offset::Offset(start),
                Duration::from_secs(10),
            ) {
                Ok(()) => Ok(false),
                Err(e) => {
                    tracing::error!(error = %e, topic, partition, "rewind failed; not going on with this partition");
                    Err(unchecked(e))
                }
            }
        }
        _ => Ok(true),
    }
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
        // tansu holds an empty fetch for the whole wait: this bounds the idle hop latency
        // (measured commit→handled p99 at 500 events/s: 103 ms at 10, 37–45 ms at 5).
        .set("fetch.wait.max.ms", "5")
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
