//! Transactional outbox (SPEC §9). `enqueue` writes an event row through the caller's open
//! transaction, next to the change it announces. `OutboxRelay` publishes the rows:
//!
//! - wakes on `LISTEN outbox_inserted` (a trigger notifies per insert statement) with a poll
//!   fallback, so nothing depends on a notification arriving;
//! - claims the *head* of each aggregate — its oldest unpublished row — together with the
//!   consecutive rows behind it that are ready (a *run*, at most `run_length`), so an event is never
//!   published while an earlier one of the same aggregate is unpublished, whether that one is in
//!   flight, backing off after a failure, parked, or claimed by another relay replica;
//! - claims with `FOR UPDATE SKIP LOCKED` and a lease: replicas share the work, and the rows of a
//!   relay that died are picked up again once its lease runs out;
//! - publishes with an idempotent producer (key = aggregate id, envelope metadata as headers), the
//!   aggregates of a round concurrently and each run in order, the next row of a run only once the
//!   broker acknowledged the previous one; a failure ends the run (the rows behind it are released
//!   unsent) and gives the row a growing delay;
//! - marks each row as its delivery completes (grouped with whatever else completed meanwhile), and
//!   starts the next round without waiting for the slowest send of the previous one;
//! - *parks* a row whose envelope does not decode, or that the broker refused `max_attempts` times
//!   with an error retrying cannot fix (record too large, unknown topic): it stays unpublished, so
//!   only its own aggregate waits behind it; `koupang-outbox list|retry|park` releases it;
//! - deletes published rows after a retention period and reports backlog and parked rows as
//!   metrics.
//!
//! Delivery is at least once: a relay that dies after the broker acknowledged but before it marked
//! the row re-publishes it. Consumers de-duplicate by event id (the inbox), which makes the
//! effects happen once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::kafka::Publisher;
use futures::stream::{FuturesUnordered, StreamExt};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;
use uuid::Uuid;

use crate::events::{Envelope, Event, EventMeta};

/// Write `event` to the outbox inside the caller's transaction. The caller must hold a lock on the
/// aggregate it changed (e.g. its row `FOR UPDATE`) so that per-aggregate order is commit order.
pub async fn enqueue<E: Event>(
    tx: &mut PgConnection,
    source: &str,
    event: &E,
    meta: &EventMeta,
) -> Result<Envelope, sqlx::Error> {
    let envelope =
        Envelope::new(source, event, meta).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    enqueue_envelope(tx, E::TOPIC, &envelope).await?;
    Ok(envelope)
}

/// Write an already built envelope (tests, re-publication tools).
pub async fn enqueue_envelope(
    tx: &mut PgConnection,
    topic: &str,
    envelope: &Envelope,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO outbox (event_id, topic, aggregate_id, event_type, envelope)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(envelope.event_id)
    .bind(topic)
    .bind(&envelope.aggregate_id)
    .bind(&envelope.event_type)
    .bind(sqlx::types::Json(envelope))
    .execute(tx)
    .await
    .map(|_| ())
}

#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Aggregates claimed per round (each with up to `run_length` consecutive rows).
    pub batch_size: i64,
    /// Most rows of one aggregate claimed in one round, published in order. After an outage each
    /// aggregate has several events queued; a run drains them without a claim per event.
    pub run_length: i64,
    /// How long a claim protects a row from other relays. A run stops sending (and releases the
    /// rest) once half of it has passed, so a slow broker cannot make two relays publish one
    /// aggregate at once.
    pub lease: Duration,
    /// Poll when no notification arrives.
    pub poll_interval: Duration,
    /// First retry delay after a failed publish; doubles per attempt up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// A row the broker refused with an error that retrying cannot fix (record too large, unknown
    /// topic) is parked once it has been tried this many times. Transient errors (broker down,
    /// delivery timeout) never park a row.
    pub max_attempts: i32,
    /// Published rows older than this are deleted.
    pub retention: Duration,
    pub cleanup_interval: Duration,
    /// Put before each row's topic when publishing (see `CommonConfig::kafka_topic_prefix`); the
    /// rows keep the logical name.
    pub topic_prefix: String,
    /// With a producer factory (`OutboxRelay::with_producer_factory`): after publishes have failed
    /// for this long without one success, or at once when the producer reports a fatal error,
    /// the producer is replaced by a new one. An idempotent producer whose records timed out
    /// during an outage is refused by tansu 0.6 ever after ("Unknown broker error"), and one that
    /// hit a fatal error is refused by any broker; a new producer (a new producer id) is not.
    pub producer_rebuild_after: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            run_length: 16,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(500),
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            max_attempts: 10,
            retention: Duration::from_secs(3600),
            cleanup_interval: Duration::from_secs(60),
            topic_prefix: String::new(),
            producer_rebuild_after: Duration::from_secs(30),
        }
    }
}

/// Makes the relay's producer (again): see `RelayConfig::producer_rebuild_after`.
pub type ProducerFactory = Arc<dyn Fn() -> anyhow::Result<Publisher> + Send + Sync>;

/// Rounds one relay has in flight at once: a round stuck on a slow partition does not hold back
/// the next one (whose aggregates are other ones: a claimed head blocks its own aggregate).
const MAX_ROUNDS_IN_FLIGHT: usize = 4;

/// Most outcomes written by one bookkeeping statement.
const MARK_GROUP: usize = 500;

/// A claimed row. The envelope is decoded per row, so one row written by an incompatible version
/// parks alone instead of failing the whole claim.
#[derive(sqlx::FromRow)]
struct Claimed {
    id: i64,
    topic: String,
    aggregate_id: String,
    envelope: sqlx::types::Json<serde_json::Value>,
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoundOutcome {
    pub published: usize,
    pub failed: usize,
    /// Of the failed rows, those parked by this round.
    pub parked: usize,
}

impl RoundOutcome {
    fn add(&mut self, other: RoundOutcome) {
        self.published += other.published;
        self.failed += other.failed;
        self.parked += other.parked;
    }
}

/// Why a publish failed, as far as parking is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// Broker down, timeout, leader moving: retry with backoff, forever.
    Retryable,
    /// The broker or client refused this record; retrying will not help. Parked after
    /// `max_attempts`.
    Rejected,
    /// The stored envelope does not decode: parked at once.
    Undecodable,
}

/// The result of one row, sent from the publishing side to the bookkeeping side of a round.
enum Outcome {
    Published(i64),
    Failed {
        id: i64,
        failure: Failure,
        error: String,
    },
    /// Claimed but not sent (behind a failure in its run, or the lease ran short).
    Released(i64),
}

/// Errors the broker or librdkafka give for a record that will be refused again however often it
/// is sent.
fn classify(e: &KafkaError) -> Failure {
    use RDKafkaErrorCode as C;
    match e.rdkafka_error_code() {
        Some(
            C::MessageSizeTooLarge
            | C::InvalidMessageSize
            | C::MessageBatchTooLarge
            | C::InvalidMessage
            | C::InvalidRecord
            | C::InvalidTopic
            | C::UnknownTopic
            | C::UnknownTopicOrPartition
            | C::UnknownPartition
            | C::TopicAuthorizationFailed,
        ) => Failure::Rejected,
        _ => Failure::Retryable,
    }
}

/// Points in a relay's round where a test can hold it (see `OutboxRelay::with_hook`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayStage {
    /// The row is claimed and about to be sent.
    BeforeSend,
    /// The broker acknowledged the row; it is not marked published yet.
    AfterSend,
}

#[cfg(feature = "test-utils")]
pub type RelayHook = std::sync::Arc<
    dyn Fn(RelayStage, &Envelope) -> crate::consumer::BoxFuture<'static, ()> + Send + Sync,
>;

pub struct OutboxRelay {
    pool: PgPool,
    /// Cloned for each send (a cheap handle), so a replacement never cuts off sends in flight.
    producer: std::sync::Mutex<Publisher>,
    factory: Option<ProducerFactory>,
    config: RelayConfig,
    id: Uuid,
    service: &'static str,
    /// Rows were marked published: heads behind them may be due.
    marked: Notify,
    #[cfg(feature = "test-utils")]
    hook: Option<RelayHook>,
}

impl OutboxRelay {
    pub fn new(
        service: &'static str,
        pool: PgPool,
        producer: Publisher,
        config: RelayConfig,
    ) -> Self {
        Self {
            pool,
            producer: std::sync::Mutex::new(producer),
            factory: None,
            config,
            id: crate::id::new_id(),
            service,
            marked: Notify::new(),
            #[cfg(feature = "test-utils")]
            hook: None,
        }
    }

    /// Let the relay replace its producer after a long run of failures (see
    /// `RelayConfig::producer_rebuild_after`).
    pub fn with_producer_factory(mut self, factory: ProducerFactory) -> Self {
        self.factory = Some(factory);
        self
    }

    fn producer(&self) -> Publisher {
        match self.producer.lock() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replace the producer when publishes have failed for `producer_rebuild_after` (counted
    /// from `failing_since`) or the producer has a fatal error. Dropping the old one is cheap:
    /// librdkafka gives up on its queued records on the publisher's own polling thread.
    fn maybe_rebuild_producer(&self, failing_since: &mut Option<Instant>) {
        let Some(factory) = &self.factory else { return };
        let fatal = self.producer().client().fatal_error();
        let overdue =
            failing_since.is_some_and(|t| t.elapsed() >= self.config.producer_rebuild_after);
        if fatal.is_none() && !overdue {
            return;
        }
        match factory() {
            Ok(fresh) => {
                let old = match self.producer.lock() {
                    Ok(mut p) => std::mem::replace(&mut *p, fresh),
                    Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), fresh),
                };
                drop(old);
                metrics::counter!("outbox_producer_rebuilds_total", "service" => self.service)
                    .increment(1);
                tracing::warn!(fatal = ?fatal, "outbox relay replaced its Kafka producer after failing publishes");
                *failing_since = Some(Instant::now());
            }
            Err(e) => tracing::error!(error = %e, "outbox relay could not make a new producer"),
        }
    }

    /// Await `hook` at each `RelayStage` of each row (tests: hold a relay between send and mark,
    /// then abort it, to crash it for real).
    #[cfg(feature = "test-utils")]
    pub fn with_hook(mut self, hook: RelayHook) -> Self {
        self.hook = Some(hook);
        self
    }

    #[cfg(feature = "test-utils")]
    async fn at(&self, stage: RelayStage, env: &Envelope) {
        if let Some(hook) = &self.hook {
            hook(stage, env).await;
        }
    }

    #[cfg(not(feature = "test-utils"))]
    async fn at(&self, _stage: RelayStage, _env: &Envelope) {}

    /// This relay's claim id (distinct per instance). A published row keeps the id of the relay
    /// that published it in `claimed_by`.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// Claim, for up to `batch_size` aggregates, the due head and the ready rows right behind it.
    async fn claim(&self) -> Result<Vec<Claimed>, sqlx::Error> {
        // `unbroken`: a run ends at the first row that is not ready (parked, backing off, or
        // claimed), so a claimed run never has a gap. The UPDATE re-checks each row, since a
        // follower is not locked by the head's FOR UPDATE.
        sqlx::query_as::<_, Claimed>(
            "WITH heads AS (
                SELECT o.id, o.aggregate_id FROM outbox o
                WHERE o.published_at IS NULL
                  AND o.parked_at IS NULL
                  AND o.next_attempt_at <= now()
                  AND (o.claimed_until IS NULL OR o.claimed_until < now())
                  AND NOT EXISTS (
                      SELECT 1 FROM outbox e
                      WHERE e.aggregate_id = o.aggregate_id
                        AND e.published_at IS NULL
                        AND e.id < o.id)
                ORDER BY o.id
                LIMIT $2
                FOR UPDATE OF o SKIP LOCKED
             ),
             runs AS (
                SELECT r.id, bool_and(r.ready) OVER (PARTITION BY h.id ORDER BY r.id) AS unbroken
                FROM heads h
                CROSS JOIN LATERAL (
                    SELECT f.id,
                           (f.parked_at IS NULL AND f.next_attempt_at <= now()
                            AND (f.claimed_until IS NULL OR f.claimed_until < now())) AS ready
                    FROM outbox f
                    WHERE f.aggregate_id = h.aggregate_id
                      AND f.published_at IS NULL
                      AND f.id >= h.id
                    ORDER BY f.id
                    LIMIT $4
                ) r
             )
             UPDATE outbox SET claimed_by = $1,
                               claimed_until = now() + make_interval(secs => $3),
                               attempts = outbox.attempts + 1
             FROM runs
             WHERE outbox.id = runs.id AND runs.unbroken
               AND outbox.published_at IS NULL
               AND outbox.parked_at IS NULL
               AND (outbox.claimed_until IS NULL OR outbox.claimed_until < now())
             RETURNING outbox.id, outbox.topic, outbox.aggregate_id, outbox.envelope",
        )
        .bind(self.id)
        .bind(self.config.batch_size)
        .bind(self.config.lease.as_secs_f64())
        .bind(self.config.run_length.max(1))
        .fetch_all(&self.pool)
        .await
    }

    async fn send(&self, row: &Claimed, env: &Envelope) -> Result<(), (Failure, String)> {
        let payload = env.to_json();
        let topic = format!("{}{}", self.config.topic_prefix, row.topic);
        let record = FutureRecord::to(&topic)
            .key(row.aggregate_id.as_bytes())
            .payload(&payload)
            .headers(crate::kafka::headers(&env.headers()));
        self.producer()
            .send(record, Timeout::After(Duration::from_secs(5)))
            .await
            .map(|_| ())
            .map_err(|e| (classify(&e), e.to_string()))
    }

    /// Publish one aggregate's run in order: each row only after the broker acknowledged the one
    /// before (a failed row must never be overtaken by a later one of its aggregate).
    async fn publish_run(
        &self,
        run: Vec<Claimed>,
        claimed_at: Instant,
        out: mpsc::UnboundedSender<Outcome>,
    ) {
        let mut rows = run.into_iter();
        while let Some(row) = rows.next() {
            let stop = if claimed_at.elapsed() >= self.config.lease / 2 {
                // Past half the lease another relay may soon take these rows: leave them.
                let _ = out.send(Outcome::Released(row.id));
                true
            } else {
                match serde_json::from_value::<Envelope>(row.envelope.0.clone()) {
                    Err(e) => {
                        let _ = out.send(Outcome::Failed {
                            id: row.id,
                            failure: Failure::Undecodable,
                            error: format!("envelope does not decode: {e}"),
                        });
                        true
                    }
                    Ok(env) => {
                        self.at(RelayStage::BeforeSend, &env).await;
                        let sent = self.send(&row, &env).await;
                        self.at(RelayStage::AfterSend, &env).await;
                        match sent {
                            Ok(()) => {
                                let _ = out.send(Outcome::Published(row.id));
                                false
                            }
                            Err((failure, error)) => {
                                let _ = out.send(Outcome::Failed {
                                    id: row.id,
                                    failure,
                                    error,
                                });
                                true
                            }
                        }
                    }
                }
            };
            if stop {
                for rest in rows {
                    let _ = out.send(Outcome::Released(rest.id));
                }
                return;
            }
        }
    }

    /// Publish the claimed rows (aggregates concurrently, each run in order) and record each
    /// outcome as it arrives, in small groups, instead of after the slowest send.
    async fn publish_claimed(&self, rows: Vec<Claimed>) -> Result<RoundOutcome, sqlx::Error> {
        let claimed_at = Instant::now();
        let mut rows = rows;
        rows.sort_by_key(|r| r.id);
        let mut runs: Vec<Vec<Claimed>> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for row in rows {
            match index.get(&row.aggregate_id) {
                Some(&i) => runs[i].push(row),
                None => {
                    index.insert(row.aggregate_id.clone(), runs.len());
                    runs.push(vec![row]);
                }
            }
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        let publishing = async move {
            futures::stream::iter(runs)
                .for_each_concurrent(None, |run| self.publish_run(run, claimed_at, tx.clone()))
                .await;
        };
        let marking = async {
            let mut total = RoundOutcome::default();
            let mut first_error = None;
            while let Some(first) = rx.recv().await {
                let mut group = vec![first];
                while group.len() < MARK_GROUP {
                    match rx.try_recv() {
                        Ok(o) => group.push(o),
                        Err(_) => break,
                    }
                }
                match self.record(group).await {
                    Ok(done) => total.add(done),
                    Err(e) => {
                        // The rows stay claimed until their lease ends and are published again.
                        tracing::error!(error = %e, "outbox bookkeeping failed");
                        first_error.get_or_insert(e);
                    }
                }
            }
            match first_error {
                Some(e) => Err(e),
                None => Ok(total),
            }
        };
        let ((), result) = tokio::join!(publishing, marking);
        result
    }

    /// Write a group of outcomes: at most three statements, only for rows still claimed by this
    /// relay (a relay whose lease ran out must not overwrite the bookkeeping of the one that took
    /// over).
    async fn record(&self, group: Vec<Outcome>) -> Result<RoundOutcome, sqlx::Error> {
        let mut published = Vec::new();
        let mut released = Vec::new();
        let mut failed_ids = Vec::new();
        let mut errors = Vec::new();
        let mut park_now = Vec::new();
        let mut rejected = Vec::new();
        for o in group {
            match o {
                Outcome::Published(id) => published.push(id),
                Outcome::Released(id) => released.push(id),
                Outcome::Failed { id, failure, error } => {
                    failed_ids.push(id);
                    errors.push(error);
                    park_now.push(failure == Failure::Undecodable);
                    rejected.push(failure == Failure::Rejected);
                }
            }
        }
        let mut outcome = RoundOutcome::default();
        if !published.is_empty() {
            // `claimed_by` stays: it names the relay that published the row. A row parked by an
            // operator while it was in flight was published all the same.
            sqlx::query(
                "UPDATE outbox SET published_at = now(), claimed_until = NULL, last_error = NULL,
                                   parked_at = NULL
                 WHERE id = ANY($1) AND claimed_by = $2 AND published_at IS NULL",
            )
            .bind(&published)
            .bind(self.id)
            .execute(&self.pool)
            .await?;
            outcome.published = published.len();
            self.marked.notify_one();
        }
        if !failed_ids.is_empty() {
            // Each row's delay grows with its own attempts. A row is parked when it does not
            // decode, or when the broker refused it and it has had its `max_attempts`.
            let parked: Vec<(i64, Uuid, String)> = sqlx::query_as(
                "UPDATE outbox o SET claimed_by = NULL, claimed_until = NULL, last_error = f.error,
                        next_attempt_at = now() + make_interval(secs =>
                            least($3, $4 * power(2, least(o.attempts, 20) - 1))),
                        parked_at = CASE WHEN f.park_now OR (f.rejected AND o.attempts >= $8)
                                         THEN coalesce(o.parked_at, now())
                                         ELSE o.parked_at END
                 FROM unnest($1::bigint[], $5::text[], $6::bool[], $7::bool[])
                      AS f(id, error, park_now, rejected)
                 WHERE o.id = f.id AND o.claimed_by = $2
                 RETURNING o.id, o.event_id, o.last_error, o.parked_at IS NOT NULL AS parked",
            )
            .bind(&failed_ids)
            .bind(self.id)
            .bind(self.config.max_backoff.as_secs_f64())
            .bind(self.config.base_backoff.as_secs_f64())
            .bind(&errors)
            .bind(&park_now)
            .bind(&rejected)
            .bind(self.config.max_attempts)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .filter_map(
                |(id, event_id, error, parked): (i64, Uuid, Option<String>, bool)| {
                    parked.then(|| (id, event_id, error.unwrap_or_default()))
                },
            )
            .collect();
            for (id, event_id, error) in &parked {
                tracing::error!(outbox_id = id, %event_id, %error,
                    "outbox row parked; its aggregate waits until `koupang-outbox retry`");
            }
            outcome.failed = failed_ids.len();
            outcome.parked = parked.len();
            let service = self.service;
            metrics::counter!("outbox_publish_failures_total", "service" => service)
                .increment(failed_ids.len() as u64);
            if !parked.is_empty() {
                metrics::counter!("outbox_parked_total", "service" => service)
                    .increment(parked.len() as u64);
            }
            tracing::warn!(failed = failed_ids.len(), error = %errors[0], "outbox publish failed; backing off");
        }
        if !released.is_empty() {
            // Not sent: the claim's attempt did not happen.
            sqlx::query(
                "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL,
                                   attempts = greatest(attempts - 1, 0)
                 WHERE id = ANY($1) AND claimed_by = $2 AND published_at IS NULL",
            )
            .bind(&released)
            .bind(self.id)
            .execute(&self.pool)
            .await?;
        }
        metrics::counter!("outbox_published_total", "service" => self.service)
            .increment(outcome.published as u64);
        Ok(outcome)
    }

    /// One round: claim, publish, record the outcomes.
    pub async fn publish_once(&self) -> Result<RoundOutcome, sqlx::Error> {
        let rows = self.claim().await?;
        if rows.is_empty() {
            return Ok(RoundOutcome::default());
        }
        self.publish_claimed(rows).await
    }

    /// Publish until nothing is due (heads released by this round become due in the next one).
    pub async fn drain(&self) -> Result<RoundOutcome, sqlx::Error> {
        let mut total = RoundOutcome::default();
        loop {
            let round = self.publish_once().await?;
            total.add(round);
            if round.published == 0 {
                return Ok(total);
            }
        }
    }

    /// Delete published rows past the retention period, in bounded batches.
    pub async fn cleanup(&self) -> Result<u64, sqlx::Error> {
        let mut deleted = 0;
        loop {
            let n = sqlx::query(
                "DELETE FROM outbox WHERE id IN (
                    SELECT id FROM outbox
                    WHERE published_at < now() - make_interval(secs => $1)
                    LIMIT 5000)",
            )
            .bind(self.config.retention.as_secs_f64())
            .execute(&self.pool)
            .await?
            .rows_affected();
            deleted += n;
            if n < 5000 {
                return Ok(deleted);
            }
        }
    }

    /// Report the backlog — pending rows (parked ones and those behind them included), the age
    /// of the oldest — and the parked rows.
    pub async fn record_backlog(&self) -> Result<Backlog, sqlx::Error> {
        let (pending, age, parked): (i64, Option<f64>, i64) = sqlx::query_as(
            "SELECT count(*), extract(epoch FROM now() - min(created_at))::float8,
                    count(*) FILTER (WHERE parked_at IS NOT NULL)
             FROM outbox WHERE published_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        let backlog = Backlog {
            pending,
            oldest_pending_age_seconds: age.unwrap_or(0.0),
            parked,
        };
        metrics::gauge!("outbox_backlog", "service" => self.service).set(pending as f64);
        metrics::gauge!("outbox_oldest_pending_age_seconds", "service" => self.service)
            .set(backlog.oldest_pending_age_seconds);
        metrics::gauge!("outbox_parked", "service" => self.service).set(parked as f64);
        Ok(backlog)
    }

    /// Run until `shutdown` turns true. Rounds overlap: a new one is claimed on a notification,
    /// a poll, or a mark while earlier ones still wait for the broker (their rows are held by the
    /// lease, their aggregates' later rows by the head rule). Rounds in progress finish (and
    /// record their claims) before the relay stops, so no claim is left to expire.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut listener = match PgListener::connect_with(&self.pool).await {
            Ok(mut l) => match l.listen("outbox_inserted").await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "outbox LISTEN failed; polling only");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "outbox listener connection failed; polling only");
                None
            }
        };
        let mut last_cleanup = Instant::now();
        let mut last_backlog = Instant::now() - Duration::from_secs(1);
        let mut pause = Duration::ZERO;
        let mut failing_since: Option<Instant> = None;
        let mut claim_now = true;
        let mut in_flight = FuturesUnordered::new();
        let grow =
            |pause: Duration| (pause * 2).clamp(self.config.base_backoff, self.config.max_backoff);
        tracing::info!(relay_id = %self.id, "outbox relay started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            if claim_now && in_flight.len() < MAX_ROUNDS_IN_FLIGHT {
                claim_now = false;
                match self.claim().await {
                    Ok(rows) if rows.is_empty() => {}
                    Ok(rows) => {
                        // A full claim may have left due heads behind: claim again at once.
                        let heads = rows
                            .iter()
                            .map(|r| r.aggregate_id.as_str())
                            .collect::<std::collections::HashSet<_>>()
                            .len();
                        claim_now = heads as i64 >= self.config.batch_size;
                        in_flight.push(self.publish_claimed(rows));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "outbox claim failed");
                        pause = grow(pause);
                    }
                }
            }
            // The backlog gauge is for dashboards: once a second is plenty, and it keeps the
            // count query off the path between a commit and its publication.
            if last_backlog.elapsed() >= Duration::from_secs(1) {
                last_backlog = Instant::now();
                if let Err(e) = self.record_backlog().await {
                    tracing::warn!(error = %e, "outbox backlog metric failed");
                }
            }
            if last_cleanup.elapsed() >= self.config.cleanup_interval {
                last_cleanup = Instant::now();
                match self.cleanup().await {
                    Ok(n) if n > 0 => tracing::debug!(deleted = n, "outbox cleanup"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "outbox cleanup failed"),
                }
            }
            if claim_now && in_flight.len() < MAX_ROUNDS_IN_FLIGHT {
                continue;
            }
            let wait = if pause.is_zero() {
                self.config.poll_interval
            } else {
                pause
            };
            tokio::select! {
                _ = shutdown.changed() => {}
                Some(done) = in_flight.next(), if !in_flight.is_empty() => match done {
                    Ok(o) if o.failed > 0 && o.published == 0 => {
                        pause = grow(pause);
                        failing_since.get_or_insert_with(Instant::now);
                        self.maybe_rebuild_producer(&mut failing_since);
                    }
                    Ok(o) => {
                        if o.published > 0 {
                            pause = Duration::ZERO;
                            failing_since = None;
                            claim_now = true;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "outbox relay round failed");
                        pause = grow(pause);
                    }
                },
                _ = self.marked.notified(), if pause.is_zero() => claim_now = true,
                _ = tokio::time::sleep(wait) => claim_now = true,
                notified = async {
                    match listener.as_mut() {
                        Some(l) => l.recv().await.map(|_| ()),
                        None => std::future::pending().await,
                    }
                }, if pause.is_zero() => {
                    if let Err(e) = notified {
                        tracing::warn!(error = %e, "outbox listener lost; it reconnects on next use");
                    }
                    claim_now = true;
                }
            }
        }
        while in_flight.next().await.is_some() {}
        tracing::info!(relay_id = %self.id, "outbox relay stopped");
    }
}

/// The relay's gauges at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backlog {
    pub pending: i64,
    pub oldest_pending_age_seconds: f64,
    pub parked: i64,
}

/// A parked row, as `koupang-outbox list` shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ParkedRow {
    pub id: i64,
    pub event_id: Uuid,
    pub topic: String,
    pub aggregate_id: String,
    pub event_type: String,
    pub attempts: i32,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub parked_at: chrono::DateTime<chrono::Utc>,
    pub last_error: Option<String>,
    /// Later rows of the same aggregate waiting behind this one.
    pub waiting_behind: i64,
}

/// The parked rows, oldest first.
pub async fn parked(pool: &PgPool, limit: i64) -> Result<Vec<ParkedRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.id, p.event_id, p.topic, p.aggregate_id, p.event_type, p.attempts, p.created_at,
                p.parked_at, p.last_error,
                (SELECT count(*) FROM outbox w
                 WHERE w.aggregate_id = p.aggregate_id AND w.published_at IS NULL
                   AND w.id > p.id) AS waiting_behind
         FROM outbox p WHERE p.parked_at IS NOT NULL
         ORDER BY p.id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Release parked rows (all of them when `ids` is `None`): due now, attempts reset, relays woken.
/// Returns the ids released.
pub async fn retry_parked(pool: &PgPool, ids: Option<&[i64]>) -> Result<Vec<i64>, sqlx::Error> {
    let released: Vec<i64> = sqlx::query_scalar(
        "UPDATE outbox SET parked_at = NULL, attempts = 0, next_attempt_at = now(),
                           claimed_by = NULL, claimed_until = NULL
         WHERE parked_at IS NOT NULL AND ($1::bigint[] IS NULL OR id = ANY($1))
         RETURNING id",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    if !released.is_empty() {
        sqlx::query("SELECT pg_notify('outbox_inserted', '')")
            .execute(pool)
            .await?;
    }
    Ok(released)
}

/// Park unpublished rows by hand (a row that keeps crashing relays, an event to hold back): the
/// relay leaves them, and their aggregates wait behind them. Returns the ids parked (rows
/// already published or parked are left as they are).
pub async fn park(pool: &PgPool, ids: &[i64], reason: &str) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE outbox SET parked_at = now(), last_error = $2
         WHERE id = ANY($1) AND published_at IS NULL AND parked_at IS NULL
         RETURNING id",
    )
    .bind(ids)
    .bind(reason)
    .fetch_all(pool)
    .await
}
