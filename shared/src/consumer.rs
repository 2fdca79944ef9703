//! Event consumer with an inbox (SPEC §9).
//!
//! Messages are handled one at a time, in partition order. For each message the handler runs
//! inside a Postgres transaction that also inserts `(event_id, consumer_group)` into `inbox`; a
//! duplicate delivery finds the row and does nothing. The offset is stored only after that
//! transaction commits (and committed to the broker in the background and at shutdown), so a crash
//! re-delivers rather than skips. Redis-only services use the same loop with a Redis de-dup key:
//! claimed atomically (`SET NX` with a TTL) before the handler runs, released if it fails, and
//! turned into the done marker by the handler's `MULTI`/`EXEC`.
//!
//! Failures: a transient error is retried with growing, jittered delays; meanwhile its partition
//! is paused (no later message of it overtakes) and the consumer keeps polling, so it stays a
//! healthy group member however long the retries last, and other partitions keep flowing. A
//! permanent error, an undecodable message, or a handler that keeps panicking goes to
//! `<topic>.dlq` with headers saying why, from where and after how many tries, and consumption
//! moves on. A panic never kills the consumer.
//!
//! Liveness: a watchdog looks at the consumer whenever it is idle. A consumer that has been out
//! of its group, or has records waiting on an assigned partition without consuming them, for
//! longer than `stall_timeout` is stalled: the `events_consumer_stalled` gauge and its readiness
//! check say so, and once the broker answers again the Kafka client is dropped and built anew
//! (it resumes from the committed offsets; the inbox absorbs what comes twice). This is what gets
//! a consumer going again after a broker stall that librdkafka does not recover from on its own.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::kafka::Publisher;
use futures::FutureExt;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use redis::aio::ConnectionManager;
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument;

use crate::events::{topics, Envelope};
use crate::kafka::TrackAssignments;

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

/// A database error is transient when waiting can fix it: the connection, the pool, a timeout, a
/// serialization failure, a deadlock, a lock not available, an administrator shutting the server
/// down, or the server short of resources. Anything else (a constraint violation, `RowNotFound`, a
/// bad query, a value that does not decode) fails the same way every time: permanent.
impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        if is_transient_sqlx(&e) {
            HandlerError::Transient(e.into())
        } else {
            HandlerError::Permanent(e.into())
        }
    }
}

/// Whether waiting and trying again can make this database error go away (see `HandlerError`).
pub fn is_transient_sqlx(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| is_transient_sqlstate(&c)),
        _ => false,
    }
}

fn is_transient_sqlstate(code: &str) -> bool {
    matches!(
        code,
        "40001" // serialization_failure
            | "40P01" // deadlock_detected
            | "55P03" // lock_not_available (lock_timeout)
            | "57014" // query_canceled (statement_timeout)
            | "57P01" // admin_shutdown
            | "57P02" // crash_shutdown
            | "57P03" // cannot_connect_now
    ) || code.starts_with("53") // insufficient resources
        || code.starts_with("08") // connection exception
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

    /// Whether the handler acts on events of this type at all. Others are passed over with no
    /// transaction and no inbox row (a redelivery is passed over again), so a consumer reading a
    /// topic for some of its event types pays no commit for the rest. All, unless overridden.
    fn wants(&self, _event_type: &str) -> bool {
        true
    }
}

/// A handler whose effects live in Redis. It must write `done_key` (e.g. `SET done_key 1 EX ttl`)
/// in the same `MULTI`/`EXEC` as its effects. Before calling it the consumer claims `done_key`
/// atomically (`SET NX` with `ConsumerConfig::claim_ttl`), so no two deliveries of one event run it
/// at once; a failed call releases the claim, and a call that returns `Ok` without writing the key
/// has it written for it. The handler must finish within the claim's TTL.
pub trait RedisEventHandler: Send + Sync + 'static {
    fn handle<'a>(
        &'a self,
        redis: &'a mut ConnectionManager,
        event: &'a Envelope,
        done_key: &'a str,
    ) -> BoxFuture<'a, Result<(), HandlerError>>;

    /// As `EventHandler::wants`: events of other types are passed over with no de-dup key.
    fn wants(&self, _event_type: &str) -> bool {
        true
    }
}

enum Store {
    Postgres(PgPool, Arc<dyn EventHandler>),
    Redis(ConnectionManager, String, Arc<dyn RedisEventHandler>),
}

/// What a delivery of one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The handler ran and its effects committed.
    Handled,
    /// The event had been handled before; nothing was done.
    Duplicate,
    /// The handler does not act on this event type (`EventHandler::wants`): nothing was done or
    /// recorded.
    NotWanted,
}

/// Value of a Redis de-dup key while a delivery holds it (the handler then writes `1`).
const CLAIM_PREFIX: &str = "claim:";

/// Delete the claim only if it is still ours (it may have expired and been taken by another).
const RELEASE_CLAIM: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0"#;

/// Turn our claim into the done marker, for a handler that returned Ok without writing it.
const FINISH_CLAIM: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('SET', KEYS[1], '1', 'EX', ARGV[2])
end
return 0"#;

impl Store {
    async fn process(
        &self,
        config: &ConsumerConfig,
        env: &Envelope,
    ) -> Result<Outcome, HandlerError> {
        let group = &config.group;
        match self {
            Store::Postgres(_, handler) if !handler.wants(&env.event_type) => {
                Ok(Outcome::NotWanted)
            }
            Store::Redis(_, _, handler) if !handler.wants(&env.event_type) => {
                Ok(Outcome::NotWanted)
            }
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
                let redis_err = |e: redis::RedisError| HandlerError::Transient(e.into());
                let token = format!("{CLAIM_PREFIX}{}", uuid::Uuid::now_v7());
                let claimed: Option<String> = redis::cmd("SET")
                    .arg(&key)
                    .arg(&token)
                    .arg("NX")
                    .arg("EX")
                    .arg(config.claim_ttl.as_secs().max(1))
                    .query_async(&mut c)
                    .await
                    .map_err(redis_err)?;
                if claimed.is_none() {
                    let holder: Option<String> = redis::cmd("GET")
                        .arg(&key)
                        .query_async(&mut c)
                        .await
                        .map_err(redis_err)?;
                    return match holder {
                        // Done by an earlier delivery.
                        Some(v) if !v.starts_with(CLAIM_PREFIX) => Ok(Outcome::Duplicate),
                        // Another delivery holds it (or just gave it up): not done yet, so
                        // neither skip it nor apply it twice; look again after a backoff.
                        _ => Err(HandlerError::Transient(anyhow::anyhow!(
                            "event {} is being handled by another delivery",
                            env.event_id
                        ))),
                    };
                }
                let result = AssertUnwindSafe(handler.handle(&mut c, env, &key))
                    .catch_unwind()
                    .await;
                match result {
                    Ok(Ok(())) => {
                        let _: redis::Value = redis::Script::new(FINISH_CLAIM)
                            .key(&key)
                            .arg(&token)
                            .arg(config.done_ttl.as_secs().max(1))
                            .invoke_async(&mut c)
                            .await
                            .map_err(redis_err)?;
                        Ok(Outcome::Handled)
                    }
                    failed => {
                        let released: Result<i64, _> = redis::Script::new(RELEASE_CLAIM)
                            .key(&key)
                            .arg(&token)
                            .invoke_async(&mut c)
                            .await;
                        if let Err(e) = released {
                            // The claim expires on its own after `claim_ttl`.
                            tracing::warn!(error = %e, key, "releasing the inbox claim failed");
                        }
                        match failed {
                            Ok(Err(e)) => Err(e),
                            Err(panic) => std::panic::resume_unwind(panic),
                            Ok(Ok(())) => Ok(Outcome::Handled),
                        }
                    }
                }
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
    /// Transient retries wait `base_backoff * 2^(attempt-1)`, capped at `max_backoff`, each
    /// between half and the whole of that (jitter, so replicas do not retry in step).
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Out of the group, or records waiting without progress, for this long: stalled (gauge and
    /// readiness) and, once the broker answers, the Kafka client is rebuilt.
    pub stall_timeout: Duration,
    /// How often the idle consumer is looked at by the watchdog.
    pub watchdog_interval: Duration,
    /// librdkafka's `max.poll.interval.ms`: the longest one handler call may take before the
    /// member is considered dead (retries do not count; the consumer polls between them). Must be
    /// at least the session timeout (6 s).
    pub max_poll_interval: Duration,
    /// Redis inbox: how long a delivery's claim on an event lasts (longer than any handler call).
    pub claim_ttl: Duration,
    /// Redis inbox: how long a done marker written by the consumer is kept.
    pub done_ttl: Duration,
    /// librdkafka's `fetch.wait.max.ms`: how long the broker may hold a fetch that has no data.
    /// Apache Kafka answers as soon as data arrives, so a long wait costs no latency there;
    /// tansu 0.6 holds every fetch for the whole wait, so there it is both the added hop latency
    /// and, through the fetch rate of an idle consumer, the broker's idle CPU (ADR 011).
    pub fetch_wait: Duration,
    /// Stop fetching while idle (ADR 014). `None`: fetch all the time, as on Apache Kafka, where
    /// an idle fetch costs the broker nothing.
    pub doze: Option<Doze>,
}

/// How an idle consumer stops fetching and notices new records (ADR 014).
///
/// After `after` with no message and no retry pending, every assigned partition is paused, so
/// librdkafka sends no fetches (heartbeats go on: it stays a group member). Then the end offsets
/// of the assigned partitions are looked up (one `ListOffsets` request) after `first_probe`, and
/// again at doubling intervals up to `max_probe`; as soon as any partition has records past the
/// consumer's position, or a message comes in anyway (a partition assigned meanwhile), the
/// partitions are resumed and fetching goes on from the position, at `fetch_wait`.
///
/// A consumer that has dozed for `deep_after` probes at up to twice `max_probe`: right after
/// traffic the next event is likely soon (a saga's next step), after a long quiet spell it is
/// not, and each probe costs the local broker a query per partition (ADR 014).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Doze {
    pub after: Duration,
    pub first_probe: Duration,
    pub max_probe: Duration,
    pub deep_after: Duration,
}

/// `Doze::deep_after` of the services' consumers.
pub const DOZE_DEEP_AFTER: Duration = Duration::from_secs(60);

/// `ConsumerConfig::fetch_wait` unless set: short, for tests and benchmarks on tansu. Services
/// take theirs from `CommonConfig::kafka_fetch_wait_ms`, which depends on the profile (ADR 011).
pub const DEFAULT_FETCH_WAIT: Duration = Duration::from_millis(5);

/// How often librdkafka reports a consumer's statistics (its fetch request count).
pub const STATS_INTERVAL: Duration = Duration::from_secs(1);

impl ConsumerConfig {
    pub fn new(brokers: &str, group: &str, topics: &[&str]) -> Self {
        Self {
            brokers: brokers.to_owned(),
            group: group.to_owned(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            max_panics: 3,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(30),
            watchdog_interval: Duration::from_secs(5),
            max_poll_interval: Duration::from_secs(60),
            claim_ttl: Duration::from_secs(60),
            done_ttl: Duration::from_secs(7 * 24 * 3600),
            fetch_wait: DEFAULT_FETCH_WAIT,
            doze: None,
        }
    }
}

/// Shared view of a consumer's liveness, for readiness checks and tests.
#[derive(Clone)]
pub struct ConsumerHealth {
    group: Arc<str>,
    stalled: Arc<AtomicBool>,
    rebuilds: Arc<std::sync::atomic::AtomicU64>,
    assigned: Arc<std::sync::atomic::AtomicUsize>,
    dozing: Arc<AtomicBool>,
    /// The dozing consumer's current interval between probes, in ms (0 while awake).
    probe_every_ms: Arc<AtomicU64>,
    fetch_stats: Arc<crate::kafka::FetchStats>,
}

impl ConsumerHealth {
    fn new(group: &str) -> Self {
        Self {
            group: group.into(),
            stalled: Arc::default(),
            rebuilds: Arc::default(),
            assigned: Arc::default(),
            dozing: Arc::default(),
            probe_every_ms: Arc::default(),
            fetch_stats: Arc::default(),
        }
    }

    /// Idle with its partitions paused, probing for new records (`ConsumerConfig::doze`).
    pub fn is_dozing(&self) -> bool {
        self.dozing.load(Ordering::SeqCst)
    }

    /// Fetch requests the current Kafka client has sent, as of librdkafka's last statistics
    /// (emitted every `STATS_INTERVAL`).
    pub fn fetch_requests(&self) -> u64 {
        self.fetch_stats.requests.load(Ordering::SeqCst)
    }

    /// How many statistics reports the current Kafka client has made (one per `STATS_INTERVAL`).
    pub fn stats_reports(&self) -> u64 {
        self.fetch_stats.reports.load(Ordering::SeqCst)
    }

    /// While dozing, the current interval between probes (`None` while awake).
    pub fn probe_interval(&self) -> Option<Duration> {
        match self.probe_every_ms.load(Ordering::SeqCst) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    fn set_probe_interval(&self, every: Option<Duration>) {
        let ms = every.map_or(0, |d| {
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
        });
        self.probe_every_ms.store(ms, Ordering::SeqCst);
    }

    fn set_dozing(&self, dozing: bool) {
        self.dozing.store(dozing, Ordering::SeqCst);
        if !dozing {
            self.set_probe_interval(None);
        }
        metrics::gauge!("events_consumer_dozing", "group" => self.group.to_string())
            .set(if dozing { 1.0 } else { 0.0 });
    }

    /// Out of its group, or not consuming waiting records, for longer than `stall_timeout`.
    pub fn is_stalled(&self) -> bool {
        self.stalled.load(Ordering::SeqCst)
    }

    /// How many times the watchdog has rebuilt the Kafka client.
    pub fn rebuilds(&self) -> u64 {
        self.rebuilds.load(Ordering::SeqCst)
    }

    /// Partitions assigned to the consumer now.
    pub fn assigned_partitions(&self) -> usize {
        self.assigned.load(Ordering::SeqCst)
    }

    fn set_stalled(&self, stalled: bool) {
        if self.stalled.swap(stalled, Ordering::SeqCst) != stalled {
            if stalled {
                tracing::error!(group = %self.group, "consumer stalled: out of its group or not consuming waiting records");
            } else {
                tracing::info!(group = %self.group, "consumer consuming again");
            }
        }
        metrics::gauge!("events_consumer_stalled", "group" => self.group.to_string())
            .set(if stalled { 1.0 } else { 0.0 });
    }

    /// The readiness check: fails while the consumer is stalled.
    pub fn check(&self) -> Result<(), String> {
        if self.is_stalled() {
            Err(format!("consumer {} stalled", self.group))
        } else {
            Ok(())
        }
    }

    /// Add this consumer's readiness check (`consumer:<group>`) to `checks`.
    pub fn register(&self, checks: &mut crate::health::HealthChecks) {
        // Once per consumer at start-up; the name lives as long as the process.
        let name: &'static str = Box::leak(format!("consumer:{}", self.group).into_boxed_str());
        let me = self.clone();
        checks.add(name, move || {
            let r = me.check();
            async move { r }
        });
    }
}

pub struct EventConsumer {
    config: ConsumerConfig,
    /// Made on the first dead letter: an idle producer's polling thread costs CPU all the time.
    dlq: tokio::sync::OnceCell<Publisher>,
    store: Store,
    health: ConsumerHealth,
}

type Kafka = Arc<StreamConsumer<TrackAssignments>>;
type PartitionKey = (String, i32);

/// Why one Kafka client's consume loop ended.
enum Exit {
    Shutdown,
    /// The client is stalled or could not be trusted to go on without skipping: build a new one.
    Rebuild(&'static str),
}

/// What one attempt at a message came to.
enum Step {
    /// Handled, a duplicate, or dead-lettered: its offset can be stored.
    Done,
    /// Try again after this delay.
    Retry(Duration),
    /// Shutdown while dead-lettering: not finished.
    Interrupted,
}

/// Per-message retry state.
#[derive(Default)]
struct Tries {
    attempt: u32,
    panics: u32,
}

/// A message whose transient failure is being retried; its partition is paused meanwhile.
struct Pending {
    msg: OwnedMessage,
    tries: Tries,
    due: Instant,
}

/// What the watchdog saw when the consumer was idle.
enum Idle {
    /// A group member with nothing waiting on its (unpaused) partitions.
    Healthy,
    /// Not a member, or records waiting unconsumed.
    Stuck(&'static str),
    /// The broker did not answer: rebuilding would not help.
    Unreachable,
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
        // Fail at start-up on a bad configuration, not later in the loop.
        Self::kafka_settings(&config)
            .create_native_config()
            .map_err(|e| anyhow::anyhow!("Kafka consumer settings: {e}"))?;
        let dlq = tokio::sync::OnceCell::new();
        let health = ConsumerHealth::new(&config.group);
        Ok(Self {
            config,
            dlq,
            store,
            health,
        })
    }

    /// This consumer's liveness (for `/health/ready` and tests).
    pub fn health(&self) -> ConsumerHealth {
        self.health.clone()
    }

    /// Run one delivery of `env` through the inbox and the handler, exactly as a message from the
    /// broker would be (one attempt, no retries, no DLQ). For tools and tests that need the real
    /// de-dup path, e.g. to race two deliveries of one event.
    pub async fn deliver(&self, env: &Envelope) -> Result<Outcome, HandlerError> {
        self.store.process(&self.config, env).await
    }

    fn kafka_settings(config: &ConsumerConfig) -> rdkafka::ClientConfig {
        let mut settings = crate::kafka::consumer_config(&config.brokers, &config.group);
        settings.set(
            "max.poll.interval.ms",
            config.max_poll_interval.as_millis().to_string(),
        );
        settings.set(
            "fetch.wait.max.ms",
            config.fetch_wait.as_millis().max(1).to_string(),
        );
        settings.set(
            "statistics.interval.ms",
            STATS_INTERVAL.as_millis().to_string(),
        );
        settings
    }

    fn kafka(&self) -> anyhow::Result<Kafka> {
        let config = &self.config;
        let context = TrackAssignments::for_group(&config.group, self.health.assigned.clone())
            .counting_fetches(self.health.fetch_stats.clone());
        let consumer: StreamConsumer<TrackAssignments> = Self::kafka_settings(config)
            .create_with_context(context)
            .map_err(|e| anyhow::anyhow!("Kafka consumer: {e}"))?;
        let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| anyhow::anyhow!("subscribing to {topics:?}: {e}"))?;
        Ok(Arc::new(consumer))
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
        let full = (self.config.base_backoff * factor).min(self.config.max_backoff);
        jittered(full)
    }

    /// Consume until `shutdown` turns true; the message being handled is finished first and the
    /// stored offsets are committed before returning.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        tracing::info!(group = %self.config.group, topics = ?self.config.topics, "consumer started");
        let mut failures = 0;
        loop {
            let kafka = match self.kafka() {
                Ok(k) => k,
                Err(e) => {
                    failures += 1;
                    tracing::error!(error = %e, "building the Kafka consumer failed; retrying");
                    if !sleep_unless_shutdown(self.backoff(failures), &shutdown).await {
                        break;
                    }
                    continue;
                }
            };
            // Next offset per partition of what this client finished, for its final commit.
            let mut finished: HashMap<PartitionKey, i64> = HashMap::new();
            let exit = self.consume(&kafka, &mut finished, &shutdown).await;
            match exit {
                Exit::Shutdown => {
                    let k = kafka.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        commit_finished(&k, &finished, CommitMode::Sync)
                    })
                    .await;
                    break;
                }
                Exit::Rebuild(why) => {
                    self.health.rebuilds.fetch_add(1, Ordering::SeqCst);
                    metrics::counter!("events_consumer_rebuilds_total", "group" => self.config.group.clone())
                        .increment(1);
                    tracing::warn!(group = %self.config.group, why, "rebuilding the Kafka consumer");
                    // Closing a client that lost its broker can block for a long time (a
                    // synchronous commit to a coordinator that never answers blocked forever):
                    // the old client's last commit is asynchronous and it is closed on a thread
                    // of its own, which the runtime does not wait for at shutdown (a blocking
                    // task would hold the runtime's shutdown). The new client starts from the
                    // committed offsets; the inbox absorbs whatever is delivered again.
                    let closing = std::thread::Builder::new()
                        .name("kafka-close".into())
                        .spawn(move || {
                            commit_finished(&kafka, &finished, CommitMode::Async);
                            drop(kafka);
                        });
                    if let Err(e) = closing {
                        tracing::warn!(error = %e, "could not start the thread closing the old consumer");
                    }
                }
            }
        }
        tracing::info!(group = %self.config.group, "consumer stopped");
    }

    /// The loop of one Kafka client.
    async fn consume(
        &self,
        kafka: &Kafka,
        finished: &mut HashMap<PartitionKey, i64>,
        shutdown: &watch::Receiver<bool>,
    ) -> Exit {
        let mut pending: HashMap<PartitionKey, Pending> = HashMap::new();
        // After a retried message finished: the offset below which its partition's records were
        // already finished here (the rewind brings some of them again).
        let mut skip_below: HashMap<PartitionKey, i64> = HashMap::new();
        let mut tick = tokio::time::interval(self.config.watchdog_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_ok = Instant::now();
        let mut received = false;
        let mut stop = shutdown.clone();
        // When the last message came (for dozing), and the probe schedule while dozing.
        let mut last_message = Instant::now();
        let mut dozing: Option<Probe> = None;
        self.health.set_dozing(false);
        loop {
            let next_due = pending
                .iter()
                .min_by_key(|(_, p)| p.due)
                .map(|(k, p)| (k.clone(), p.due));
            let far = Instant::now() + Duration::from_secs(3600);
            let due_at = next_due.as_ref().map_or(far, |(_, d)| *d);
            let doze_at = match (&self.config.doze, &dozing) {
                (Some(doze), None) if pending.is_empty() => Some(last_message + doze.after),
                (Some(_), Some(probe)) => Some(probe.at),
                _ => None,
            };
            tokio::select! {
                _ = async { let _ = stop.wait_for(|s| *s).await; } => return Exit::Shutdown,
                _ = tokio::time::sleep_until(due_at), if next_due.is_some() => {
                    let Some((key, _)) = next_due else { continue };
                    let Some(mut p) = pending.remove(&key) else { continue };
                    if !is_assigned(kafka, &key) {
                        // Revoked: the partition's next owner reads it from the committed offset.
                        continue;
                    }
                    match self.attempt(&p.msg, &mut p.tries, shutdown).await {
                        Step::Retry(delay) => {
                            p.due = Instant::now() + delay;
                            pending.insert(key, p);
                        }
                        Step::Interrupted => return Exit::Shutdown,
                        Step::Done => {
                            let next = p.msg.offset() + 1;
                            self.finish(kafka, &p.msg, finished);
                            // Read the partition again right after the message: anything fetched
                            // before the pause was discarded.
                            skip_below.insert(key.clone(), next);
                            if let Err(e) = seek_and_resume(kafka, &key, next).await {
                                if is_assigned(kafka, &key) {
                                    tracing::error!(error = %e, topic = key.0, partition = key.1, "resuming after retries failed");
                                    return Exit::Rebuild("resuming a partition after retries failed");
                                }
                            }
                        }
                    }
                }
                m = kafka.recv() => {
                    let msg = match m {
                        Ok(m) => m.detach(),
                        Err(e) => {
                            tracing::warn!(error = %e, "consumer error; continuing");
                            continue;
                        }
                    };
                    received = true;
                    last_message = Instant::now();
                    if dozing.take().is_some() {
                        // From a partition assigned while dozing: the others may have records too.
                        if let Err(e) = self.wake(kafka, &pending).await {
                            tracing::error!(error = %e, "resuming after dozing failed");
                            return Exit::Rebuild("resuming partitions after dozing failed");
                        }
                    }
                    let key = (msg.topic().to_owned(), msg.partition());
                    if let Some(below) = skip_below.get(&key) {
                        if msg.offset() < *below {
                            continue; // finished here already; read again by the rewind
                        }
                        skip_below.remove(&key);
                    }
                    if let Some(p) = pending.get(&key) {
                        if msg.offset() > p.msg.offset() {

                            // Fetched before the pause; read again once the retried one is done.
                            continue;
                        }
                        // The partition was reassigned and is read from the committed offset
                        // again: the retried message comes back this way.
                        pending.remove(&key);
                    }
                    let k = kafka.clone();
                    let (t, part, off) = (key.0.clone(), key.1, msg.offset());
                    let check = tokio::task::spawn_blocking(move || {
                        crate::kafka::resume_check(&*k, &t, part, off)
                    })
                    .await;
                    match check {
                        Ok(Ok(true)) => {}
                        Ok(Ok(false)) => continue,
                        Ok(Err(_)) | Err(_) => {
                            return Exit::Rebuild("checking the resume position failed")
                        }
                    }
                    let mut tries = Tries::default();
                    match self.attempt(&msg, &mut tries, shutdown).await {
                        Step::Done => self.finish(kafka, &msg, finished),
                        Step::Interrupted => return Exit::Shutdown,
                        Step::Retry(delay) => {
                            if let Err(e) = kafka.pause(&partition_list(&key, None)) {
                                tracing::warn!(error = %e, "pausing a partition for retries");
                            }
                            pending.insert(key, Pending { msg, tries, due: Instant::now() + delay });
                        }
                    }
                }
                _ = tokio::time::sleep_until(doze_at.unwrap_or(far)), if doze_at.is_some() => {
                    let Some(doze) = self.config.doze else { continue };
                    let k = kafka.clone();
                    let asleep = dozing.is_some();
                    // Pausing again each time also pauses partitions assigned since.
                    let waiting = tokio::task::spawn_blocking(move || {
                        pause_assigned(&k)?;
                        if asleep { records_waiting(&k, &[]) } else { Ok(false) }
                    })
                    .await
                    .map_err(anyhow::Error::from)
                    .and_then(|r| r);
                    match (waiting, dozing.take()) {
                        (Ok(false), None) => {
                            tracing::debug!(group = %self.config.group, "idle: dozing");
                            self.health.set_probe_interval(Some(doze.first_probe));
                            self.health.set_dozing(true);
                            let now = Instant::now();
                            dozing = Some(Probe { at: now + doze.first_probe, every: doze.first_probe, since: now });
                        }
                        (Ok(false), Some(probe)) => {
                            let cap = if probe.since.elapsed() >= doze.deep_after {
                                doze.max_probe.saturating_mul(2)
                            } else {
                                doze.max_probe
                            };
                            let every = probe.every.saturating_mul(2).min(cap);
                            self.health.set_probe_interval(Some(every));
                            dozing = Some(Probe { at: Instant::now() + every, every, ..probe });
                        }
                        (waiting, _) => {
                            // Records waiting, or the broker could not tell: fetch again (a
                            // fetching consumer is what the watchdog knows how to judge).
                            if let Err(e) = waiting {
                                tracing::warn!(error = %e, "probing while dozing failed; fetching again");
                            }
                            last_message = Instant::now();
                            if let Err(e) = self.wake(kafka, &pending).await {
                                tracing::error!(error = %e, "resuming after dozing failed");
                                return Exit::Rebuild("resuming partitions after dozing failed");
                            }
                        }
                    }
                }
                _ = tick.tick() => {
                    if std::mem::take(&mut received) {
                        last_ok = Instant::now();
                        self.health.set_stalled(false);
                        continue;
                    }
                    let k = kafka.clone();
                    let paused: Vec<PartitionKey> = pending.keys().cloned().collect();
                    let topic = self.config.topics.first().cloned().unwrap_or_default();
                    // A dozing consumer's probes already look for records left waiting.
                    let look_for_records = dozing.is_none();
                    let idle = tokio::task::spawn_blocking(move || idle_state(&k, &paused, &topic, look_for_records))
                        .await
                        .unwrap_or(Idle::Unreachable);
                    let stalled = last_ok.elapsed() > self.config.stall_timeout;
                    match idle {
                        Idle::Healthy => {
                            last_ok = Instant::now();
                            self.health.set_stalled(false);
                        }
                        Idle::Stuck(why) if stalled => {
                            self.health.set_stalled(true);
                            return Exit::Rebuild(why);
                        }
                        Idle::Stuck(_) | Idle::Unreachable => self.health.set_stalled(stalled),
                    }
                }
            }
        }
    }

    /// Resume every assigned partition except those paused for a retry.
    async fn wake(
        &self,
        kafka: &Kafka,
        pending: &HashMap<PartitionKey, Pending>,
    ) -> anyhow::Result<()> {
        self.health.set_dozing(false);
        let mut resume = TopicPartitionList::new();
        for e in kafka.assignment()?.elements() {
            if !pending.contains_key(&(e.topic().to_owned(), e.partition())) {
                resume.add_partition(e.topic(), e.partition());
            }
        }
        // librdkafka fetches a resumed partition from the position after the last message it
        // gave us (everything fetched before dozing was given: the consumer had been idle), so
        // nothing is skipped and nothing comes twice.
        kafka.resume(&resume)?;
        let first = resume
            .elements()
            .first()
            .map(|e| (e.topic().to_owned(), e.partition()));
        drop(resume);
        // The resume is handled on librdkafka's main thread, which does not wake the broker
        // thread: with every partition paused that thread sleeps up to a second before it looks
        // for fetchable partitions again (measured: 1 s from wake to the first message). A request
        // to the same broker wakes it at once: the end offsets of one resumed partition.
        if let Some((topic, partition)) = first {
            let k = kafka.clone();
            let nudged = tokio::task::spawn_blocking(move || {
                k.fetch_watermarks(&topic, partition, Duration::from_secs(2))
            })
            .await;
            if let Ok(Err(e)) = nudged {
                tracing::debug!(error = %e, "waking the fetcher after dozing");
            }
        }
        tracing::debug!(group = %self.config.group, "records waiting: awake");
        Ok(())
    }

    /// Store the offset after `msg` (committed in the background) and remember it for the final
    /// commit.
    fn finish(&self, kafka: &Kafka, msg: &OwnedMessage, finished: &mut HashMap<PartitionKey, i64>) {
        if let Err(e) = kafka.store_offset(msg.topic(), msg.partition(), msg.offset()) {
            tracing::error!(error = %e, "storing offset failed");
        }
        finished.insert((msg.topic().to_owned(), msg.partition()), msg.offset() + 1);
    }

    /// One attempt at a message: handled, duplicate or dead-lettered (`Done`), or to be retried.
    async fn attempt(
        &self,
        msg: &OwnedMessage,
        tries: &mut Tries,
        shutdown: &watch::Receiver<bool>,
    ) -> Step {
        let done = |ok: bool| if ok { Step::Done } else { Step::Interrupted };
        let envelope = match msg.payload().map(Envelope::from_json) {
            Some(Ok(env)) => env,
            Some(Err(e)) => {
                return done(
                    self.dead_letter(msg, "undecodable", &e.to_string(), 1, shutdown)
                        .await,
                )
            }
            None => {
                return done(
                    self.dead_letter(msg, "undecodable", "empty payload", 1, shutdown)
                        .await,
                )
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
        tries.attempt += 1;
        let attempt = tries.attempt;
        let result = AssertUnwindSafe(self.store.process(&self.config, &envelope))
            .catch_unwind()
            .instrument(span.clone())
            .await;
        let error = match result {
            Ok(Ok(outcome)) => {
                let label = match outcome {
                    Outcome::Handled => "handled",
                    Outcome::Duplicate => "duplicate",
                    Outcome::NotWanted => "not_wanted",
                };
                metrics::counter!("events_consumed_total", "group" => self.config.group.clone(), "outcome" => label)
                    .increment(1);
                span.in_scope(|| tracing::debug!(outcome = label, "event done"));
                return Step::Done;
            }
            Ok(Err(HandlerError::Permanent(e))) => {
                return done(
                    self.dead_letter(msg, "permanent_error", &format!("{e:#}"), attempt, shutdown)
                        .await,
                );
            }
            Ok(Err(HandlerError::Transient(e))) => format!("{e:#}"),
            Err(panic) => {
                tries.panics += 1;
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "handler panicked".into());
                if tries.panics >= self.config.max_panics {
                    return done(
                        self.dead_letter(msg, "handler_panic", &what, attempt, shutdown)
                            .await,
                    );
                }
                format!("panic: {what}")
            }
        };
        metrics::counter!("events_retried_total", "group" => self.config.group.clone())
            .increment(1);
        let delay = self.backoff(attempt);
        span.in_scope(|| tracing::warn!(attempt, error = %error, delay_ms = delay.as_millis() as u64, "handler failed; retrying"));
        Step::Retry(delay)
    }

    /// Put the message on `<topic>.dlq` with the reason; retried until the broker takes it, so a
    /// message is never dropped silently.
    async fn dead_letter(
        &self,
        msg: &OwnedMessage,
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
            let made = self
                .dlq
                .get_or_try_init(|| async {
                    crate::kafka::producer(
                        &self.config.brokers,
                        &format!("{}-dlq", self.config.group),
                    )
                })
                .await;
            let sent = match made {
                Ok(producer) => producer
                    .send(record, Timeout::After(Duration::from_secs(5)))
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(format!("{e:#}")),
            };
            match sent {
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
                Err(e) => {
                    tracing::error!(error = %e, "DLQ publish failed; retrying");
                    if !sleep_unless_shutdown(self.backoff(attempt), shutdown).await {
                        return false;
                    }
                }
            }
        }
    }
}

/// Between half and the whole of `full`, uniformly.
fn jittered(full: Duration) -> Duration {
    // The random bits of a v7 UUID are enough randomness for spreading retries.
    let random =
        (uuid::Uuid::now_v7().as_u128() & u128::from(u32::MAX)) as f64 / f64::from(u32::MAX);
    full.mul_f64(0.5 + 0.5 * random)
}

fn partition_list(key: &PartitionKey, offset: Option<i64>) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    match offset {
        Some(o) => {
            if let Err(e) = tpl.add_partition_offset(&key.0, key.1, Offset::Offset(o)) {
                tracing::warn!(error = %e, "building a partition list");
            }
        }
        None => {
            tpl.add_partition(&key.0, key.1);
        }
    }
    tpl
}

fn is_assigned(kafka: &Kafka, key: &PartitionKey) -> bool {
    kafka
        .assignment()
        .map(|a| a.find_partition(&key.0, key.1).is_some())
        .unwrap_or(false)
}

/// Let a paused partition fetch again from `next` (or a little before it).
async fn seek_and_resume(kafka: &Kafka, key: &PartitionKey, next: i64) -> anyhow::Result<()> {
    let k = kafka.clone();
    let key = key.clone();
    tokio::task::spawn_blocking(move || {
        // One whole producer batch back, as in `kafka::resume_check`: tansu answers a fetch that
        // starts inside a batch with the next batch, which would skip the rest of this one. The
        // records before `next` that come again are dropped by the caller (`skip_below`).
        let from = (next - crate::kafka::MAX_BATCH_RECORDS).max(0);
        k.resume(&partition_list(&key, None))?;
        k.seek(&key.0, key.1, Offset::Offset(from), Duration::from_secs(5))?;
        Ok(())
    })
    .await?
}

/// When a dozing consumer next looks for records, and the interval that got it there.
struct Probe {
    at: Instant,
    every: Duration,
    /// When the consumer began to doze.
    since: Instant,
}

/// Pause every assigned partition (dozing). Blocking (reads the assignment).
fn pause_assigned(kafka: &Kafka) -> anyhow::Result<()> {
    let assignment = kafka.assignment()?;
    if assignment.count() > 0 {
        kafka.pause(&assignment)?;
    }
    Ok(())
}

/// Whether any assigned partition outside `skip` has records past the consumer's position (for a
/// partition it has not read from: past the group's committed offset, or past its first record
/// when nothing is committed). The end offsets come in one `ListOffsets` request for all
/// partitions (the offsets of timestamp -1, which the protocol defines as "latest"). Blocking
/// (asks the broker). Used by the dozing consumer's probes and by the watchdog.
fn records_waiting(kafka: &Kafka, skip: &[PartitionKey]) -> anyhow::Result<bool> {
    let timeout = Duration::from_secs(2);
    let mut asked = TopicPartitionList::new();
    for e in kafka.assignment()?.elements() {
        if !skip.contains(&(e.topic().to_owned(), e.partition())) {
            asked.add_partition_offset(e.topic(), e.partition(), Offset::End)?;
        }
    }
    if asked.count() == 0 {
        return Ok(false);
    }
    let ends = kafka.offsets_for_times(asked.clone(), timeout)?;
    let position = kafka.position()?;
    let mut committed: Option<TopicPartitionList> = None;
    for e in ends.elements() {
        let (topic, partition) = (e.topic(), e.partition());
        let Offset::Offset(end) = e.offset() else {
            anyhow::bail!("no end offset for {topic}/{partition}");
        };
        let at =
            |l: &TopicPartitionList| match l.find_partition(topic, partition).map(|p| p.offset()) {
                Some(Offset::Offset(o)) => Some(o),
                _ => None,
            };
        let next = match at(&position) {
            Some(o) => o,
            None => {
                if committed.is_none() {
                    committed = Some(kafka.committed_offsets(asked.clone(), timeout)?);
                }
                match committed.as_ref().and_then(at) {
                    Some(o) => o,
                    // Nothing committed: it starts at the first record still kept.
                    None => kafka.fetch_watermarks(topic, partition, timeout)?.0,
                }
            }
        };
        if next < end {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether the idle consumer is a member with nothing waiting on its partitions other than
/// `paused` (held by retries). Blocking (asks the broker).
fn idle_state(kafka: &Kafka, paused: &[PartitionKey], topic: &str, look_for_records: bool) -> Idle {
    if !kafka.context().is_member() {
        return match kafka.fetch_metadata(Some(topic), Duration::from_secs(2)) {
            Ok(_) => Idle::Stuck("not a group member"),
            Err(_) => Idle::Unreachable,
        };
    }
    if !look_for_records {
        return Idle::Healthy;
    }
    match records_waiting(kafka, paused) {
        Ok(false) => Idle::Healthy,
        Ok(true) => Idle::Stuck("records waiting and not consumed"),
        Err(_) => Idle::Unreachable,
    }
}

/// Commit exactly what was finished (never the position of a message still being retried).
fn commit_finished(kafka: &Kafka, finished: &HashMap<PartitionKey, i64>, mode: CommitMode) {
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
    if let Err(e) = kafka.commit(&tpl, mode) {
        tracing::debug!(error = %e, "final commit");
    }
}

async fn sleep_unless_shutdown(delay: Duration, shutdown: &watch::Receiver<bool>) -> bool {
    let mut s = shutdown.clone();
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = s.wait_for(|v| *v) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_error(code: &str) -> sqlx::Error {
        #[derive(Debug)]
        struct Fake(String);
        impl std::fmt::Display for Fake {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "fake database error {}", self.0)
            }
        }
        impl std::error::Error for Fake {}
        impl sqlx::error::DatabaseError for Fake {
            fn message(&self) -> &str {
                "fake"
            }
            fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
                Some(self.0.as_str().into())
            }
            fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
                self
            }
            fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
                self
            }
            fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
                self
            }
            fn kind(&self) -> sqlx::error::ErrorKind {
                sqlx::error::ErrorKind::Other
            }
        }
        sqlx::Error::Database(Box::new(Fake(code.to_owned())))
    }

    fn is_transient(e: sqlx::Error) -> bool {
        matches!(HandlerError::from(e), HandlerError::Transient(_))
    }

    #[test]
    fn connection_pool_and_timeout_errors_are_transient() {
        assert!(is_transient(sqlx::Error::PoolTimedOut));
        assert!(is_transient(sqlx::Error::PoolClosed));
        assert!(is_transient(sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset"
        ))));
        assert!(is_transient(sqlx::Error::Protocol("unexpected eof".into())));
    }

    #[test]
    fn sqlstates_that_waiting_can_fix_are_transient() {
        for code in [
            "40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03", "53000", "53100",
            "53200", "53300", "08000", "08003", "08006", "08001",
        ] {
            assert!(is_transient(db_error(code)), "{code}");
        }
    }

    #[test]
    fn constraint_violations_missing_rows_bad_queries_and_decoding_are_permanent() {
        for code in [
            "23505", "23503", "23502", "23514", "42601", "42P01", "22P02", "P0001",
        ] {
            assert!(!is_transient(db_error(code)), "{code}");
        }
        assert!(!is_transient(sqlx::Error::RowNotFound));
        assert!(!is_transient(sqlx::Error::ColumnNotFound("x".into())));
        assert!(!is_transient(sqlx::Error::Decode("bad".into())));
    }

    #[test]
    fn the_configured_fetch_wait_is_what_librdkafka_is_given() {
        let mut config = ConsumerConfig::new("127.0.0.1:1", "g", &["t"]);
        config.fetch_wait = Duration::from_millis(250);
        let settings = EventConsumer::kafka_settings(&config);
        assert_eq!(settings.get("fetch.wait.max.ms"), Some("250"));
    }

    #[test]
    fn backoff_jitter_stays_between_half_and_all_of_the_delay_and_varies() {
        let full = Duration::from_millis(1000);
        let samples: Vec<Duration> = (0..200).map(|_| jittered(full)).collect();
        assert!(
            samples.iter().all(|d| *d >= full / 2 && *d <= full),
            "{samples:?}"
        );
        let distinct: std::collections::HashSet<_> = samples.iter().collect();
        assert!(
            distinct.len() > 100,
            "only {} distinct delays",
            distinct.len()
        );
    }
}
