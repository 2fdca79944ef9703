//! Event consumer with an inbox (SPEC §9).
//!
//! Messages are handled one at a time, in partition order. For each message the handler runs
//! inside a Postgres transaction that also inserts `(event_id, consumer_group)` into `inbox`; a
//! duplicate delivery finds the row and does nothing. The offset is stored only after that
//! transaction commits (and committed to the broker in the background and at shutdown), so a crash
//! re-delivers rather than skips. Redis-only services use the same loop with a Redis de-dup key
//! written atomically with the handler's effects.
//!
//! Failures: a transient error is retried with growing delays, holding the partition so no later
//! message of it overtakes; a permanent error, an undecodable message, or a handler that keeps
//! panicking goes to `<topic>.dlq` with headers saying why, from where and after how many tries,
//! and consumption moves on. A panic never kills the consumer.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use redis::aio::ConnectionManager;
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;
use tracing::Instrument;

use crate::events::{topics, Envelope};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a handler failed.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Worth retrying (database unavailable, deadlock, a dependency timing out).
    #[error("transient: {0:#}")]
    Transient(anyhow::Error),
    /// Retrying cannot help (the event contradicts the handler's rules); goes to the DLQ.
    #[error("permanent: {0:#}")]
    Permanent(anyhow::Error),
}

impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        HandlerError::Transient(e.into())
    }
}

/// A handler whose effects live in Postgres: it gets the transaction the inbox row is in.
pub trait EventHandler: Send + Sync + 'static {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;

    /// Runs once the transaction with the handler's effects has committed (not for duplicates):
    /// the place for side effects that must not see uncommitted state, such as dropping cache
    /// entries. Best effort: a failure here is the handler's to log, the event stays handled.
    fn after_commit<'a>(&'a self, _event: &'a Envelope) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// A handler whose effects live in Redis. It must write `done_key` (e.g. `SET done_key 1 EX ttl`)
/// in the same `MULTI`/`EXEC` as its effects; the consumer skips events whose key exists.
pub trait RedisEventHandler: Send + Sync + 'static {
    fn handle<'a>(
        &'a self,
        redis: &'a mut ConnectionManager,
        event: &'a Envelope,
        done_key: &'a str,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;
}

enum Store {
    Postgres(PgPool, Arc<dyn EventHandler>),
    Redis(ConnectionManager, String, Arc<dyn RedisEventHandler>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Handled,
    Duplicate,
}

impl Store {
    async fn process(&self, group: &str, env: &Envelope) -> Result<Outcome, HandlerError> {
        match self {
            Store::Postgres(pool, handler) => {
                let mut tx = pool.begin().await?;
                let fresh = sqlx::query(
                    "INSERT INTO inbox (event_id, consumer_group, event_type) VALUES ($1, $2, $3)
                     ON CONFLICT DO NOTHING",
                )
                .bind(env.event_id)
                .bind(group)
                .bind(&env.event_type)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if !fresh {
                    return Ok(Outcome::Duplicate);
                }
                handler.handle(&mut tx, env).await?;
                tx.commit().await?;
                handler.after_commit(env).await;
                Ok(Outcome::Handled)
            }
            Store::Redis(conn, prefix, handler) => {
                let key = format!("{prefix}inbox:{group}:{}", env.event_id);
                let mut c = conn.clone();
                let seen: bool = redis::cmd("EXISTS")
                    .arg(&key)
                    .query_async(&mut c)
                    .await
                    .map_err(|e| HandlerError::Transient(e.into()))?;
                if seen {
                    return Ok(Outcome::Duplicate);
                }
                handler.handle(&mut c, env, &key).await?;
                Ok(Outcome::Handled)
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub brokers: String,
    pub group: String,
    pub topics: Vec<String>,
    /// Tries before a panicking handler's message goes to the DLQ.
    pub max_panics: u32,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl ConsumerConfig {
    pub fn new(brokers: &str, group: &str, topics: &[&str]) -> Self {
        Self {
            brokers: brokers.to_owned(),
            group: group.to_owned(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            max_panics: 3,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
        }
    }
}

pub struct EventConsumer {
    config: ConsumerConfig,
    consumer: StreamConsumer<crate::kafka::TrackAssignments>,
    dlq: FutureProducer,
    store: Store,
}

impl EventConsumer {
    pub fn postgres(
        config: ConsumerConfig,
        pool: PgPool,
        handler: Arc<dyn EventHandler>,
    ) -> anyhow::Result<Self> {
        Self::build(config, Store::Postgres(pool, handler))
    }

    pub fn redis(
        config: ConsumerConfig,
        conn: ConnectionManager,
        key_prefix: &str,
        handler: Arc<dyn RedisEventHandler>,
    ) -> anyhow::Result<Self> {
        Self::build(config, Store::Redis(conn, key_prefix.to_owned(), handler))
    }

    fn build(config: ConsumerConfig, store: Store) -> anyhow::Result<Self> {
        let consumer: StreamConsumer<crate::kafka::TrackAssignments> =
            crate::kafka::consumer_config(&config.brokers, &config.group)
                .create_with_context(crate::kafka::TrackAssignments::default())
                .map_err(|e| anyhow::anyhow!("Kafka consumer: {e}"))?;
        let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| anyhow::anyhow!("subscribing to {topics:?}: {e}"))?;
        let dlq = crate::kafka::producer(&config.brokers, &format!("{}-dlq", config.group))?;
        Ok(Self {
            config,
            consumer,
            dlq,
            store,
        })
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
        (self.config.base_backoff * factor).min(self.config.max_backoff)
    }

    /// Consume until `shutdown` turns true; the message being handled is finished first and the
    /// stored offsets are committed before returning.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(group = %self.config.group, topics = ?self.config.topics, "consumer started");
        // Next offset per partition of what this instance finished, for the final commit.
        let mut finished: std::collections::HashMap<(String, i32), i64> = Default::default();
        loop {
            let msg = tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                m = self.consumer.recv() => m,
            };
            let msg = match msg {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "consumer error; continuing");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            if !crate::kafka::resume_check(
                &self.consumer,
                msg.topic(),
                msg.partition(),
                msg.offset(),
            ) {
                continue;
            }
            if !self.handle_message(&msg, &shutdown).await {
                break; // shutdown during retries: the message was not finished and will be redelivered
            }
            if let Err(e) = self.consumer.store_offset_from_message(&msg) {
                tracing::error!(error = %e, "storing offset failed");
            }
            finished.insert((msg.topic().to_owned(), msg.partition()), msg.offset() + 1);
        }
        self.commit_finished(&finished);
        tracing::info!(group = %self.config.group, "consumer stopped");
    }

    /// Commit exactly what was finished (never the position of a message still being retried).
    fn commit_finished(&self, finished: &std::collections::HashMap<(String, i32), i64>) {
        if finished.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), next) in finished {
            if let Err(e) = tpl.add_partition_offset(topic, *partition, Offset::Offset(*next)) {
                tracing::warn!(error = %e, "building the final commit");
            }
        }
        // Partitions moved to another member by a rebalance refuse the commit; theirs stands.
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Sync) {
            tracing::debug!(error = %e, "final commit");
        }
    }

    /// Handle one message to completion (handled, duplicate, or dead-lettered). Returns false only
    /// when shutdown interrupted retries.
    async fn handle_message(
        &self,
        msg: &BorrowedMessage<'_>,
        shutdown: &watch::Receiver<bool>,
    ) -> bool {
        let envelope = match msg.payload().map(Envelope::from_json) {
            Some(Ok(env)) => env,
            Some(Err(e)) => {
                return self
                    .dead_letter(msg, "undecodable", &e.to_string(), 1, shutdown)
                    .await
            }
            None => {
                return self
                    .dead_letter(msg, "undecodable", "empty payload", 1, shutdown)
                    .await
            }
        };
        let span = tracing::info_span!(
            "handle_event",
            group = %self.config.group,
            event_id = %envelope.event_id,
            event_type = %envelope.event_type,
            aggregate_id = %envelope.aggregate_id,
            topic = msg.topic(),
            partition = msg.partition(),
            offset = msg.offset(),
        );
        {
            use tracing_opentelemetry::OpenTelemetrySpanExt;
            span.set_parent(crate::telemetry::context_from_traceparent(
                envelope.traceparent.as_deref(),
            ));
        }
        let mut attempt = 0u32;
        let mut panics = 0u32;
        loop {
            attempt += 1;
            let result = AssertUnwindSafe(self.store.process(&self.config.group, &envelope))
                .catch_unwind()
                .instrument(span.clone())
                .await;
            let error = match result {
                Ok(Ok(outcome)) => {
                    let label = if outcome == Outcome::Handled {
                        "handled"
                    } else {
                        "duplicate"
                    };
                    metrics::counter!("events_consumed_total", "group" => self.config.group.clone(), "outcome" => label)
                        .increment(1);
                    span.in_scope(|| tracing::debug!(outcome = label, "event done"));
                    return true;
                }
                Ok(Err(HandlerError::Permanent(e))) => {
                    return self
                        .dead_letter(msg, "permanent_error", &format!("{e:#}"), attempt, shutdown)
                        .await;
                }
                Ok(Err(HandlerError::Transient(e))) => format!("{e:#}"),
                Err(panic) => {
                    panics += 1;
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "handler panicked".into());
                    if panics >= self.config.max_panics {
                        return self
                            .dead_letter(msg, "handler_panic", &what, attempt, shutdown)
                            .await;
                    }
                    format!("panic: {what}")
                }
            };
            metrics::counter!("events_retried_total", "group" => self.config.group.clone())
                .increment(1);
            let delay = self.backoff(attempt);
            span.in_scope(|| tracing::warn!(attempt, error = %error, delay_ms = delay.as_millis() as u64, "handler failed; retrying"));
            if !sleep_unless_shutdown(delay, shutdown).await {
                return false;
            }
        }
    }

    /// Put the message on `<topic>.dlq` with the reason; retried until the broker takes it, so a
    /// message is never dropped silently.
    async fn dead_letter(
        &self,
        msg: &BorrowedMessage<'_>,
        reason: &str,
        error: &str,
        attempts: u32,
        shutdown: &watch::Receiver<bool>,
    ) -> bool {
        let source = msg.topic();
        let dlq_topic = if source.ends_with(".dlq") {
            source.to_owned()
        } else {
            topics::dlq(source)
        };
        let mut pairs: Vec<(String, String)> = crate::kafka::header_pairs(msg.headers())
            .into_iter()
            .filter(|(k, _)| !k.starts_with("dlq_"))
            .collect();
        pairs.extend([
            ("dlq_reason".to_owned(), reason.to_owned()),
            ("dlq_error".to_owned(), error.chars().take(2000).collect()),
            ("dlq_source_topic".to_owned(), source.to_owned()),
            (
                "dlq_source_partition".to_owned(),
                msg.partition().to_string(),
            ),
            ("dlq_source_offset".to_owned(), msg.offset().to_string()),
            ("dlq_consumer_group".to_owned(), self.config.group.clone()),
            ("dlq_attempts".to_owned(), attempts.to_string()),
            ("dlq_failed_at".to_owned(), chrono::Utc::now().to_rfc3339()),
        ]);
        let borrowed: Vec<(&str, String)> =
            pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut record = FutureRecord::<[u8], [u8]>::to(&dlq_topic)
                .headers(crate::kafka::headers(&borrowed));
            if let Some(k) = msg.key() {
                record = record.key(k);
            }
            if let Some(p) = msg.payload() {
                record = record.payload(p);
            }
            match self
                .dlq
                .send(record, Timeout::After(Duration::from_secs(5)))
                .await
            {
                Ok(_) => {
                    metrics::counter!("events_dead_lettered_total", "group" => self.config.group.clone(), "reason" => reason.to_owned())
                        .increment(1);
                    tracing::error!(
                        topic = source,
                        partition = msg.partition(),
                        offset = msg.offset(),
                        reason,
                        error,
                        "message sent to the DLQ"
                    );
                    return true;
                }
                Err((e, _)) => {
                    tracing::error!(error = %e, "DLQ publish failed; retrying");
                    if !sleep_unless_shutdown(self.backoff(attempt), shutdown).await {
                        return false;
                    }
                }
            }
        }
    }
}

async fn sleep_unless_shutdown(delay: Duration, shutdown: &watch::Receiver<bool>) -> bool {
    let mut s = shutdown.clone();
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = s.wait_for(|v| *v) => false,
    }
}
