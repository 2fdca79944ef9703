//! Transactional outbox (SPEC §9). `enqueue` writes an event row through the caller's open
//! transaction, next to the change it announces. `OutboxRelay` publishes the rows:
//!
//! - wakes on `LISTEN outbox_inserted` (a trigger notifies per insert statement) with a poll
//!   fallback, so nothing depends on a notification arriving;
//! - claims only the *head* of each aggregate — the oldest unpublished row of that aggregate — so an
//!   event is never published while an earlier one of the same aggregate is unpublished, whether
//!   that one is in flight, backing off after a failure, or claimed by another relay replica;
//! - claims with `FOR UPDATE SKIP LOCKED` and a lease: replicas share the work, and the rows of a
//!   relay that died are picked up again once its lease runs out;
//! - publishes with an idempotent producer (key = aggregate id, envelope metadata as headers),
//!   marks successes published, and gives failures a growing delay;
//! - deletes published rows after a retention period and reports the backlog as metrics.
//!
//! Delivery is at least once: a relay that dies after the broker acknowledged but before it marked
//! the row re-publishes it. Consumers de-duplicate by event id (the inbox), which makes the
//! effects happen once.

use std::time::Duration;

use futures::future::join_all;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;
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
    /// Rows claimed per round.
    pub batch_size: i64,
    /// How long a claim protects a row from other relays.
    pub lease: Duration,
    /// Poll when no notification arrives.
    pub poll_interval: Duration,
    /// First retry delay after a failed publish; doubles per attempt up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Published rows older than this are deleted.
    pub retention: Duration,
    pub cleanup_interval: Duration,
    /// Put before each row's topic when publishing (see `CommonConfig::kafka_topic_prefix`); the
    /// rows keep the logical name.
    pub topic_prefix: String,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(500),
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            retention: Duration::from_secs(3600),
            cleanup_interval: Duration::from_secs(60),
            topic_prefix: String::new(),
        }
    }
}

#[derive(sqlx::FromRow)]
struct Claimed {
    id: i64,
    topic: String,
    aggregate_id: String,
    envelope: sqlx::types::Json<Envelope>,
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RoundOutcome {
    pub published: usize,
    pub failed: usize,
}

pub struct OutboxRelay {
    pool: PgPool,
    producer: FutureProducer,
    config: RelayConfig,
    id: Uuid,
    service: &'static str,
}

impl OutboxRelay {
    pub fn new(
        service: &'static str,
        pool: PgPool,
        producer: FutureProducer,
        config: RelayConfig,
    ) -> Self {
        Self {
            pool,
            producer,
            config,
            id: crate::id::new_id(),
            service,
        }
    }

    /// This relay's claim id (distinct per instance).
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// Claim the due heads of up to `batch_size` aggregates for this relay.
    async fn claim(&self) -> Result<Vec<Claimed>, sqlx::Error> {
        sqlx::query_as::<_, Claimed>(
            "WITH candidates AS (
                SELECT o.id FROM outbox o
                WHERE o.published_at IS NULL
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
             )
             UPDATE outbox SET claimed_by = $1,
                               claimed_until = now() + make_interval(secs => $3),
                               attempts = outbox.attempts + 1
             FROM candidates WHERE outbox.id = candidates.id
             RETURNING outbox.id, outbox.topic, outbox.aggregate_id, outbox.envelope",
        )
        .bind(self.id)
        .bind(self.config.batch_size)
        .bind(self.config.lease.as_secs_f64())
        .fetch_all(&self.pool)
        .await
    }

    async fn send(&self, row: &Claimed) -> Result<(), String> {
        let env = &row.envelope.0;
        let payload = env.to_json();
        let topic = format!("{}{}", self.config.topic_prefix, row.topic);
        let record = FutureRecord::to(&topic)
            .key(row.aggregate_id.as_bytes())
            .payload(&payload)
            .headers(crate::kafka::headers(&env.headers()));
        self.producer
            .send(record, Timeout::After(Duration::from_secs(5)))
            .await
            .map(|_| ())
            .map_err(|(e, _)| e.to_string())
    }

    /// One round: claim, publish concurrently (distinct aggregates), record the outcome.
    pub async fn publish_once(&self) -> Result<RoundOutcome, sqlx::Error> {
        let mut rows = self.claim().await?;
        if rows.is_empty() {
            return Ok(RoundOutcome::default());
        }
        rows.sort_by_key(|r| r.id);
        let results = join_all(rows.iter().map(|r| self.send(r))).await;
        let mut ok = Vec::new();
        let mut failed: Vec<(i64, String)> = Vec::new();
        for (row, result) in rows.iter().zip(results) {
            match result {
                Ok(()) => ok.push(row.id),
                Err(e) => failed.push((row.id, e)),
            }
        }
        if !ok.is_empty() {
            // Only rows still claimed by this relay: a relay whose lease ran out must not
            // overwrite the bookkeeping of the one that took over.
            sqlx::query(
                "UPDATE outbox SET published_at = now(), claimed_by = NULL, claimed_until = NULL,
                                   last_error = NULL
                 WHERE id = ANY($1) AND claimed_by = $2",
            )
            .bind(&ok)
            .bind(self.id)
            .execute(&self.pool)
            .await?;
        }
        if !failed.is_empty() {
            // One statement for all failures; each row's delay grows with its own attempts.
            let ids: Vec<i64> = failed.iter().map(|(id, _)| *id).collect();
            let errors: Vec<&str> = failed.iter().map(|(_, e)| e.as_str()).collect();
            sqlx::query(
                "UPDATE outbox o SET claimed_by = NULL, claimed_until = NULL, last_error = f.error,
                        next_attempt_at = now() + make_interval(secs =>
                            least($3, $4 * power(2, least(o.attempts, 20) - 1)))
                 FROM unnest($1::bigint[], $5::text[]) AS f(id, error)
                 WHERE o.id = f.id AND o.claimed_by = $2",
            )
            .bind(&ids)
            .bind(self.id)
            .bind(self.config.max_backoff.as_secs_f64())
            .bind(self.config.base_backoff.as_secs_f64())
            .bind(&errors)
            .execute(&self.pool)
            .await?;
        }
        let service = self.service;
        metrics::counter!("outbox_published_total", "service" => service)
            .increment(ok.len() as u64);
        if !failed.is_empty() {
            metrics::counter!("outbox_publish_failures_total", "service" => service)
                .increment(failed.len() as u64);
            tracing::warn!(failed = failed.len(), error = %failed[0].1, "outbox publish failed; backing off");
        }
        Ok(RoundOutcome {
            published: ok.len(),
            failed: failed.len(),
        })
    }

    /// Publish until nothing is due (heads released by this round become due in the next one).
    pub async fn drain(&self) -> Result<RoundOutcome, sqlx::Error> {
        let mut total = RoundOutcome::default();
        loop {
            let round = self.publish_once().await?;
            total.published += round.published;
            total.failed += round.failed;
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

    /// Report the backlog: pending rows and the age of the oldest.
    pub async fn record_backlog(&self) -> Result<(i64, f64), sqlx::Error> {
        let (count, age): (i64, Option<f64>) = sqlx::query_as(
            "SELECT count(*), extract(epoch FROM now() - min(created_at))::float8
             FROM outbox WHERE published_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        let age = age.unwrap_or(0.0);
        metrics::gauge!("outbox_backlog", "service" => self.service).set(count as f64);
        metrics::gauge!("outbox_oldest_pending_age_seconds", "service" => self.service).set(age);
        Ok((count, age))
    }

    /// Run until `shutdown` turns true. A round in progress finishes (and records its claims)
    /// before the relay stops, so no claim is left to expire.
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
        let mut last_cleanup = tokio::time::Instant::now();
        let mut last_backlog = tokio::time::Instant::now() - Duration::from_secs(1);
        let mut pause = Duration::ZERO;
        tracing::info!(relay_id = %self.id, "outbox relay started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            match self.drain().await {
                Ok(outcome) if outcome.failed > 0 && outcome.published == 0 => {
                    pause = (pause * 2).clamp(self.config.base_backoff, self.config.max_backoff);
                }
                Ok(_) => pause = Duration::ZERO,
                Err(e) => {
                    tracing::error!(error = %e, "outbox relay round failed");
                    pause = (pause * 2).clamp(self.config.base_backoff, self.config.max_backoff);
                }
            }
            // The backlog gauge is for dashboards: once a second is plenty, and it keeps the
            // count query off the path between a commit and its publication.
            if last_backlog.elapsed() >= Duration::from_secs(1) {
                last_backlog = tokio::time::Instant::now();
                if let Err(e) = self.record_backlog().await {
                    tracing::warn!(error = %e, "outbox backlog metric failed");
                }
            }
            if last_cleanup.elapsed() >= self.config.cleanup_interval {
                last_cleanup = tokio::time::Instant::now();
                match self.cleanup().await {
                    Ok(n) if n > 0 => tracing::debug!(deleted = n, "outbox cleanup"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "outbox cleanup failed"),
                }
            }
            let wait = if pause.is_zero() {
                self.config.poll_interval
            } else {
                pause
            };
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = tokio::time::sleep(wait) => {}
                notified = async {
                    match listener.as_mut() {
                        Some(l) => l.recv().await.map(|_| ()),
                        None => std::future::pending().await,
                    }
                }, if pause.is_zero() => {
                    if let Err(e) = notified {
                        tracing::warn!(error = %e, "outbox listener lost; it reconnects on next use");
                    }
                }
            }
        }
        tracing::info!(relay_id = %self.id, "outbox relay stopped");
    }
}
