//! The normal path and the per-message failure cases: duplicates, poison, transient and permanent
//! errors, panics, re-drive, the Redis de-dup, and trace context across the hop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use shared::consumer::{
    BoxFuture, ConsumerConfig, EventConsumer, EventHandler, HandlerError, Outcome,
    RedisEventHandler,
};
use shared::events::Envelope;
use uuid::Uuid;

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn events_written_in_a_transaction_reach_the_consumer_with_envelope_headers() {
    let h = Harness::new(3).await;
    let order = Uuid::now_v7();
    let env = h.write(order).await;
    let relay = h.relay(&brokers());
    assert_eq!(relay.drain().await.unwrap().published, 1);
    let published: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT published_at FROM outbox WHERE event_id = $1")
            .bind(env.event_id)
            .fetch_one(&h.db)
            .await
            .unwrap();
    assert!(published.is_some(), "row marked published");
    let messages = read_all(&brokers(), &h.topic, 1).await;
    let (headers, payload) = &messages[0];
    let get = |k: &str| header(headers, k);
    assert_eq!(get("event_id"), Some(env.event_id.to_string()));
    assert_eq!(get("event_type").as_deref(), Some("OrderConfirmed"));
    assert_eq!(get("aggregate_id"), Some(order.to_string()));
    assert_eq!(
        Envelope::from_json(payload.as_deref().unwrap()).unwrap(),
        env
    );
}

#[tokio::test]
async fn a_rolled_back_transaction_publishes_nothing() {
    let h = Harness::new(1).await;
    let mut tx = h.db.begin().await.unwrap();
    h.write_in(&mut tx, Uuid::now_v7()).await;
    tx.rollback().await.unwrap();
    assert_eq!(h.relay(&brokers()).drain().await.unwrap().published, 0);
}

#[tokio::test]
async fn the_same_event_delivered_twice_takes_effect_once() {
    let h = Harness::new(1).await;
    let env = envelope(Uuid::now_v7());
    let next = envelope(env.event_id);
    for _ in 0..2 {
        produce_raw(
            &brokers(),
            &h.topic,
            &env.aggregate_id,
            &env.to_json(),
            &env.headers(),
        )
        .await;
    }
    produce_raw(
        &brokers(),
        &h.topic,
        &next.aggregate_id,
        &next.to_json(),
        &next.headers(),
    )
    .await;
    let rec = Recorder::new("c1");
    let c =
        Running::consumer(h.consumer(&brokers(), &format!("g-{}", Uuid::now_v7()), rec.clone()));
    let effects = h.wait_for_effects(2, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.stop().await;
    let effects_after = h.effects().await;
    assert_eq!(effects_after.len(), 2, "{effects:?}");
    assert_eq!(
        effects_after.iter().filter(|e| e.0 == env.event_id).count(),
        1
    );
    let inbox: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox WHERE event_id = $1")
        .bind(env.event_id)
        .fetch_one(&h.db)
        .await
        .unwrap();
    assert_eq!(inbox, 1);
}

#[tokio::test]
async fn a_poison_message_goes_to_the_dlq_with_reasons_and_the_next_message_is_processed() {
    let h = Harness::new(1).await;
    produce_raw(
        &brokers(),
        &h.topic,
        "k",
        b"{not an envelope",
        &[("source", "fuzzer".into())],
    )
    .await;
    let good = envelope(Uuid::now_v7());
    produce_raw(
        &brokers(),
        &h.topic,
        &good.aggregate_id,
        &good.to_json(),
        &good.headers(),
    )
    .await;
    let group = format!("g-{}", Uuid::now_v7());
    let c = Running::consumer(h.consumer(&brokers(), &group, Recorder::new("c1")));
    let effects = h.wait_for_effects(1, WAIT).await;
    c.stop().await;
    assert_eq!(effects[0].0, good.event_id);
    let dlq = read_all(&brokers(), &format!("{}.dlq", h.topic), 1).await;
    assert_eq!(dlq.len(), 1);
    let (headers, payload) = &dlq[0];
    let get = |k: &str| header(headers, k);
    assert_eq!(get("dlq_reason").as_deref(), Some("undecodable"));
    assert_eq!(get("dlq_source_topic").as_deref(), Some(h.topic.as_str()));
    assert_eq!(get("dlq_source_partition").as_deref(), Some("0"));
    assert_eq!(get("dlq_source_offset").as_deref(), Some("0"));
    assert_eq!(get("dlq_consumer_group"), Some(group));
    assert_eq!(get("dlq_attempts").as_deref(), Some("1"));
    assert_eq!(
        get("source").as_deref(),
        Some("fuzzer"),
        "original headers kept"
    );
    assert_eq!(
        payload.as_deref(),
        Some(&b"{not an envelope"[..]),
        "payload untouched"
    );
}

#[tokio::test]
async fn a_transient_failure_is_retried_and_no_later_event_of_the_order_overtakes_it() {
    let h = Harness::new(3).await;
    let order = Uuid::now_v7();
    let first = h.write(order).await;
    let second = h.write(order).await;
    let third = h.write(order).await;
    let rec = Recorder::new("c1");
    rec.plan(first.event_id, Plan::Transient(3));
    let relay = Running::relay(h.relay(&brokers()));
    let c =
        Running::consumer(h.consumer(&brokers(), &format!("g-{}", Uuid::now_v7()), rec.clone()));
    let effects = h.wait_for_effects(3, WAIT).await;
    c.stop().await;
    relay.stop().await;
    let order_seen: Vec<Uuid> = effects.iter().map(|e| e.0).collect();
    assert_eq!(
        order_seen,
        vec![first.event_id, second.event_id, third.event_id]
    );
    assert_eq!(
        rec.attempts_of(first.event_id),
        4,
        "three failures, then success"
    );
    assert_eq!(rec.attempts_of(second.event_id), 1);
}

#[tokio::test]
async fn a_permanent_failure_is_dead_lettered_and_a_redrive_processes_it_again() {
    let h = Harness::new(1).await;
    let bad = h.write(Uuid::now_v7()).await;
    let good = h.write(Uuid::now_v7()).await;
    let rec = Recorder::new("c1");
    rec.plan(bad.event_id, Plan::Permanent);
    h.relay(&brokers()).drain().await.unwrap();
    let group = format!("g-{}", Uuid::now_v7());
    let c = Running::consumer(h.consumer(&brokers(), &group, rec.clone()));
    let effects = h.wait_for_effects(1, WAIT).await;
    assert_eq!(effects[0].0, good.event_id);
    let dlq_topic = format!("{}.dlq", h.topic);
    let dlq = read_all(&brokers(), &dlq_topic, 1).await;
    let reason = header(&dlq[0].0, "dlq_reason");
    assert_eq!(reason.as_deref(), Some("permanent_error"));
    assert_eq!(
        rec.attempts_of(bad.event_id),
        1,
        "a permanent error is not retried"
    );

    // The cause is fixed; the operator re-drives the DLQ.
    rec.plans.lock().unwrap().clear();
    let moved = shared::dlq::redrive(
        &brokers(),
        &dlq_topic,
        &format!("redrive-{group}"),
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert_eq!(moved, 1);
    let effects = h.wait_for_effects(2, WAIT).await;
    c.stop().await;
    assert_eq!(
        effects.iter().filter(|e| e.0 == bad.event_id).count(),
        1,
        "re-driven event handled once"
    );
    let again = shared::dlq::redrive(
        &brokers(),
        &dlq_topic,
        &format!("redrive-{group}"),
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert_eq!(again, 0, "a dead letter is re-driven once");
}

#[tokio::test]
async fn a_panicking_handler_does_not_kill_consumption() {
    let h = Harness::new(1).await;
    let boom = h.write(Uuid::now_v7()).await;
    let fine = h.write(Uuid::now_v7()).await;
    let rec = Recorder::new("c1");
    rec.plan(boom.event_id, Plan::Panic);
    h.relay(&brokers()).drain().await.unwrap();
    let c =
        Running::consumer(h.consumer(&brokers(), &format!("g-{}", Uuid::now_v7()), rec.clone()));
    let effects = h.wait_for_effects(1, WAIT).await;
    c.stop().await;
    assert_eq!(effects[0].0, fine.event_id);
    assert_eq!(
        rec.attempts_of(boom.event_id),
        3,
        "retried up to max_panics, then dead-lettered"
    );
    let dlq = read_all(&brokers(), &format!("{}.dlq", h.topic), 1).await;
    let reason = header(&dlq[0].0, "dlq_reason");
    assert_eq!(reason.as_deref(), Some("handler_panic"));
}

struct RedisCounter;

impl RedisEventHandler for RedisCounter {
    fn handle<'a>(
        &'a self,
        redis: &'a mut redis::aio::ConnectionManager,
        event: &'a Envelope,
        done_key: &'a str,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let counter = format!("{}:count", done_key.rsplit_once(':').map_or("", |p| p.0));
            redis::pipe()
                .atomic()
                .cmd("INCR")
                .arg(&counter)
                .ignore()
                .cmd("RPUSH")
                .arg(format!("{counter}:events"))
                .arg(event.event_id.to_string())
                .ignore()
                .cmd("SET")
                .arg(done_key)
                .arg(1)
                .arg("EX")
                .arg(86_400)
                .ignore()
                .query_async::<()>(redis)
                .await
                .map_err(|e| HandlerError::Transient(e.into()))
        })
    }
}

fn redis_consumer(
    group: &str,
    topic: &str,
    conn: &redis::aio::ConnectionManager,
    prefix: &str,
    handler: Arc<dyn RedisEventHandler>,
) -> EventConsumer {
    let mut config = ConsumerConfig::new(&brokers(), group, &[topic]);
    config.base_backoff = Duration::from_millis(50);
    EventConsumer::redis(config, conn.clone(), prefix, handler).unwrap()
}

async fn redis_conn() -> redis::aio::ConnectionManager {
    let client = redis::Client::open(shared::test_utils::redis_url()).unwrap();
    redis::aio::ConnectionManager::new(client).await.unwrap()
}

/// The events `RedisCounter` applied under `prefix` for `group`, in order, and its count.
async fn redis_effects(
    conn: &redis::aio::ConnectionManager,
    prefix: &str,
    group: &str,
) -> (Vec<String>, i64) {
    let counter = format!("{prefix}inbox:{group}:count");
    let mut c = conn.clone();
    let list: Vec<String> = redis::cmd("LRANGE")
        .arg(format!("{counter}:events"))
        .arg(0)
        .arg(-1)
        .query_async(&mut c)
        .await
        .unwrap();
    let count: Option<i64> = redis::cmd("GET")
        .arg(&counter)
        .query_async(&mut c)
        .await
        .unwrap();
    (list, count.unwrap_or(0))
}

#[tokio::test]
async fn the_redis_inbox_applies_a_duplicate_once() {
    let h = Harness::new(1).await;
    let env = envelope(Uuid::now_v7());
    for _ in 0..3 {
        produce_raw(
            &brokers(),
            &h.topic,
            &env.aggregate_id,
            &env.to_json(),
            &env.headers(),
        )
        .await;
    }
    // A marker after the duplicates on the same key (so the same partition): once it is
    // handled, every duplicate before it has been delivered.
    let mut marker = envelope(Uuid::now_v7());
    marker.aggregate_id = env.aggregate_id.clone();
    produce_raw(
        &brokers(),
        &h.topic,
        &marker.aggregate_id,
        &marker.to_json(),
        &marker.headers(),
    )
    .await;
    let prefix = shared::test_utils::unique_redis_prefix();
    let conn = redis_conn().await;
    let group = format!("g-{}", Uuid::now_v7());
    let c = Running::consumer(redis_consumer(
        &group,
        &h.topic,
        &conn,
        &prefix,
        Arc::new(RedisCounter),
    ));
    let deadline = tokio::time::Instant::now() + WAIT;
    let (handled, count) = loop {
        let (list, count) = redis_effects(&conn, &prefix, &group).await;
        if list.contains(&marker.event_id.to_string()) || tokio::time::Instant::now() > deadline {
            break (list, count);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    c.stop().await;
    assert_eq!(
        handled,
        vec![env.event_id.to_string(), marker.event_id.to_string()],
        "three deliveries of one event, then the marker: two effects"
    );
    assert_eq!(count, 2);
}

/// `RedisCounter` that, before applying, says it has started and waits to be let go.
struct Gated {
    entered: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Notify>,
}

impl RedisEventHandler for Gated {
    fn handle<'a>(
        &'a self,
        redis: &'a mut redis::aio::ConnectionManager,
        event: &'a Envelope,
        done_key: &'a str,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            self.entered.notify_one();
            self.release.notified().await;
            RedisCounter.handle(redis, event, done_key).await
        })
    }
}

#[tokio::test]
async fn a_second_delivery_racing_one_in_progress_on_the_redis_inbox_neither_applies_nor_skips_it()
{
    let prefix = shared::test_utils::unique_redis_prefix();
    let conn = redis_conn().await;
    let group = format!("g-{}", Uuid::now_v7());
    let topic = format!("test.{}", Uuid::now_v7().simple());
    let gate = Gated {
        entered: Arc::default(),
        release: Arc::default(),
    };
    let (entered, release) = (gate.entered.clone(), gate.release.clone());
    // Two consumers of one group, as two replicas during a rebalance.
    let first = Arc::new(redis_consumer(
        &group,
        &topic,
        &conn,
        &prefix,
        Arc::new(gate),
    ));
    let second = redis_consumer(&group, &topic, &conn, &prefix, Arc::new(RedisCounter));
    let env = envelope(Uuid::now_v7());
    let in_progress = tokio::spawn({
        let (first, env) = (first.clone(), env.clone());
        async move { first.deliver(&env).await }
    });
    entered.notified().await;
    match second.deliver(&env).await {
        Err(HandlerError::Transient(e)) => assert!(
            e.to_string().contains("being handled by another delivery"),
            "{e:#}"
        ),
        other => panic!("the racing delivery must wait and retry, got {other:?}"),
    }
    release.notify_one();
    assert_eq!(in_progress.await.unwrap().unwrap(), Outcome::Handled);
    assert_eq!(
        second.deliver(&env).await.unwrap(),
        Outcome::Duplicate,
        "its retry finds the event done"
    );
    let (handled, count) = redis_effects(&conn, &prefix, &group).await;
    assert_eq!(handled, vec![env.event_id.to_string()]);
    assert_eq!(count, 1);
}

#[tokio::test]
async fn many_simultaneous_deliveries_of_one_event_on_the_redis_inbox_apply_it_exactly_once() {
    let prefix = shared::test_utils::unique_redis_prefix();
    let conn = redis_conn().await;
    let group = format!("g-{}", Uuid::now_v7());
    let topic = format!("test.{}", Uuid::now_v7().simple());
    let consumers: Vec<Arc<EventConsumer>> = (0..8)
        .map(|_| {
            Arc::new(redis_consumer(
                &group,
                &topic,
                &conn,
                &prefix,
                Arc::new(RedisCounter),
            ))
        })
        .collect();
    let env = envelope(Uuid::now_v7());
    let barrier = Arc::new(tokio::sync::Barrier::new(consumers.len()));
    let tasks: Vec<_> = consumers
        .iter()
        .map(|c| {
            let (c, env, barrier) = (c.clone(), env.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                c.deliver(&env).await
            })
        })
        .collect();
    let mut handled = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(Outcome::Handled) => handled += 1,
            Ok(Outcome::Duplicate) => {}
            Ok(Outcome::NotWanted) => panic!("the recorder wants every event"),
            Err(HandlerError::Transient(e)) => assert!(
                e.to_string().contains("being handled by another delivery"),
                "a loser either finds the event done or in progress, got {e:#}"
            ),
            Err(e) => panic!("unexpected {e:#}"),
        }
    }
    assert_eq!(handled, 1, "exactly one delivery applied the event");
    let (list, count) = redis_effects(&conn, &prefix, &group).await;
    assert_eq!(list, vec![env.event_id.to_string()]);
    assert_eq!(count, 1);
}

/// Fails every call until told to work.
struct Broken;

impl RedisEventHandler for Broken {
    fn handle<'a>(
        &'a self,
        _redis: &'a mut redis::aio::ConnectionManager,
        _event: &'a Envelope,
        _done_key: &'a str,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async { Err(HandlerError::Transient(anyhow::anyhow!("redis hiccup"))) })
    }
}

#[tokio::test]
async fn a_failed_delivery_on_the_redis_inbox_releases_its_claim_so_the_next_one_applies_it() {
    let prefix = shared::test_utils::unique_redis_prefix();
    let conn = redis_conn().await;
    let group = format!("g-{}", Uuid::now_v7());
    let topic = format!("test.{}", Uuid::now_v7().simple());
    let broken = redis_consumer(&group, &topic, &conn, &prefix, Arc::new(Broken));
    let working = redis_consumer(&group, &topic, &conn, &prefix, Arc::new(RedisCounter));
    let env = envelope(Uuid::now_v7());
    assert!(matches!(
        broken.deliver(&env).await,
        Err(HandlerError::Transient(_))
    ));
    assert_eq!(working.deliver(&env).await.unwrap(), Outcome::Handled);
    let (list, count) = redis_effects(&conn, &prefix, &group).await;
    assert_eq!(list, vec![env.event_id.to_string()]);
    assert_eq!(count, 1);
}

/// Handles like `Recorder`, except that one event violates a unique constraint.
struct ViolatesConstraint {
    bad: Uuid,
    rec: Arc<Recorder>,
}

impl EventHandler for ViolatesConstraint {
    fn handle<'a>(
        &'a self,
        tx: &'a mut sqlx::PgConnection,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            if event.event_id == self.bad {
                for _ in 0..2 {
                    sqlx::query(
                        "INSERT INTO effects (seq, event_id, aggregate_id, consumer) VALUES (-1, $1, $2, 'bad')",
                    )
                    .bind(event.event_id)
                    .bind(&event.aggregate_id)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            self.rec.handle(tx, event).await
        })
    }
}

#[tokio::test]
async fn a_constraint_violation_in_a_handler_is_dead_lettered_at_once_and_the_next_message_is_handled(
) {
    let h = Harness::new(1).await;
    let bad = h.write(Uuid::now_v7()).await;
    let good = h.write(Uuid::now_v7()).await;
    h.relay(&brokers()).drain().await.unwrap();
    let rec = Recorder::new("c1");
    let group = format!("g-{}", Uuid::now_v7());
    let mut config = ConsumerConfig::new(&brokers(), &group, &[&h.topic]);
    config.base_backoff = Duration::from_millis(50);
    let handler = Arc::new(ViolatesConstraint {
        bad: bad.event_id,
        rec: rec.clone(),
    });
    let c = Running::consumer(EventConsumer::postgres(config, h.db.clone(), handler).unwrap());
    let effects = h.wait_for_effects(1, WAIT).await;
    let dlq = read_all(&brokers(), &format!("{}.dlq", h.topic), 1).await;
    c.stop().await;
    assert_eq!(
        effects.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![good.event_id]
    );
    assert_eq!(dlq.len(), 1);
    let (headers, payload) = &dlq[0];
    assert_eq!(
        header(headers, "dlq_reason").as_deref(),
        Some("permanent_error")
    );
    let error = header(headers, "dlq_error").unwrap();
    assert!(error.contains("unique constraint"), "{error}");
    assert_eq!(
        header(headers, "dlq_attempts").as_deref(),
        Some("1"),
        "not retried"
    );
    assert_eq!(
        Envelope::from_json(payload.as_deref().unwrap())
            .unwrap()
            .event_id,
        bad.event_id
    );
    assert_eq!(
        rec.attempts_of(bad.event_id),
        0,
        "never got past the violation"
    );
    let inbox: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox WHERE event_id = $1")
        .bind(bad.event_id)
        .fetch_one(&h.db)
        .await
        .unwrap();
    assert_eq!(inbox, 0, "its transaction rolled back");
}

/// Fails one event transiently until a deadline, then handles like `Recorder`.
struct FailsUntil {
    event: Uuid,
    until: tokio::time::Instant,
    attempts: std::sync::atomic::AtomicU32,
    rec: Arc<Recorder>,
}

impl EventHandler for FailsUntil {
    fn handle<'a>(
        &'a self,
        tx: &'a mut sqlx::PgConnection,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            if event.event_id == self.event {
                self.attempts
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if tokio::time::Instant::now() < self.until {
                    return Err(HandlerError::Transient(anyhow::anyhow!("database down")));
                }
            }
            self.rec.handle(tx, event).await
        })
    }
}

fn counter_value(name: &str, group: &str) -> f64 {
    let text = shared::metrics::handle().unwrap().render();
    let prefix = format!("{name}{{group=\"{group}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn retrying_longer_than_the_poll_interval_keeps_the_member_in_its_group_and_the_order_intact()
{
    shared::metrics::handle();
    let h = Harness::new(1).await;
    let order = Uuid::now_v7();
    let first = h.write(order).await;
    let second = h.write(order).await;
    let third = h.write(order).await;
    h.relay(&brokers()).drain().await.unwrap();
    let rec = Recorder::new("c1");
    let group = format!("g-{}", Uuid::now_v7());
    let mut config = ConsumerConfig::new(&brokers(), &group, &[&h.topic]);
    config.base_backoff = Duration::from_millis(200);
    config.max_backoff = Duration::from_secs(1);
    // The shortest librdkafka allows (the session timeout); the handler fails for 2.5 times it.
    config.max_poll_interval = Duration::from_secs(6);
    let handler = Arc::new(FailsUntil {
        event: first.event_id,
        until: tokio::time::Instant::now() + Duration::from_secs(15),
        attempts: Default::default(),
        rec: rec.clone(),
    });
    let consumer = EventConsumer::postgres(config, h.db.clone(), handler.clone()).unwrap();
    let health = consumer.health();
    let revoked_before = counter_value("events_consumer_revocations_total", &group);
    let c = Running::consumer(consumer);
    let effects = h.wait_for_effects(3, Duration::from_secs(60)).await;
    let revoked_after = counter_value("events_consumer_revocations_total", &group);
    c.stop().await;
    assert_eq!(
        effects.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![first.event_id, second.event_id, third.event_id],
        "nothing skipped, nothing overtook the retried event, nothing twice"
    );
    assert!(
        handler.attempts.load(std::sync::atomic::Ordering::SeqCst) > 2,
        "it really was retried"
    );
    assert_eq!(
        revoked_after, revoked_before,
        "no partition was taken away (no eviction, no rebalance)"
    );
    assert_eq!(health.rebuilds(), 0, "the watchdog saw a healthy member");
}

#[tokio::test]
async fn the_writers_trace_becomes_the_parent_of_the_handlers_span() {
    use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let _ = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
        .try_init();

    let h = Harness::new(1).await;
    let span = tracing::info_span!("place_order");
    let trace_id = span.context().span().span_context().trace_id().to_string();
    let env = {
        use tracing::Instrument;
        h.write(Uuid::now_v7()).instrument(span.clone()).await
    };
    assert!(
        env.traceparent
            .as_deref()
            .is_some_and(|t| t.contains(&trace_id)),
        "{:?}",
        env.traceparent
    );
    h.relay(&brokers()).drain().await.unwrap();
    let c = Running::consumer(h.consumer(
        &brokers(),
        &format!("g-{}", Uuid::now_v7()),
        Recorder::new("c1"),
    ));
    h.wait_for_effects(1, WAIT).await;
    c.stop().await;
    let recorded: Option<String> = sqlx::query_scalar("SELECT trace_id FROM effects")
        .fetch_one(&h.db)
        .await
        .unwrap();
    assert_eq!(recorded, Some(trace_id), "one trace across the hop");
}

#[tokio::test]
async fn published_rows_past_retention_are_cleaned_up_and_pending_ones_kept() {
    let h = Harness::new(1).await;
    let old = h.write(Uuid::now_v7()).await;
    let recent = h.write(Uuid::now_v7()).await;
    let relay = h.relay(&brokers());
    relay.drain().await.unwrap();
    let pending = h.write(Uuid::now_v7()).await;
    sqlx::query("UPDATE outbox SET published_at = now() - interval '2 hours' WHERE event_id = $1")
        .bind(old.event_id)
        .execute(&h.db)
        .await
        .unwrap();
    assert_eq!(relay.cleanup().await.unwrap(), 1);
    let left: Vec<Uuid> = sqlx::query_scalar("SELECT event_id FROM outbox ORDER BY id")
        .fetch_all(&h.db)
        .await
        .unwrap();
    assert_eq!(left, vec![recent.event_id, pending.event_id]);
    let backlog = relay.record_backlog().await.unwrap();
    assert_eq!(backlog.pending, 1, "the unpublished row is the backlog");
    assert!(backlog.oldest_pending_age_seconds >= 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_a_handler_does_not_want_are_passed_over_without_a_transaction_and_those_after_are_handled(
) {
    let h = Harness::new(2).await;
    let rec = Recorder::new("picky");
    rec.not_wanting("SomethingElse");
    // Alternating per order: an event the handler does not want, then one it does.
    let orders: Vec<Uuid> = (0..6).map(|_| Uuid::now_v7()).collect();
    let mut wanted: HashMap<String, Vec<Uuid>> = HashMap::new();
    let mut unwanted = Vec::new();
    for _ in 0..2 {
        for o in &orders {
            let mut tx = h.db.begin().await.unwrap();
            let mut other = envelope(*o);
            other.event_type = "SomethingElse".into();
            shared::outbox::enqueue_envelope(&mut tx, &h.topic, &other)
                .await
                .unwrap();
            unwanted.push(other.event_id);
            let e = h.write_in(&mut tx, *o).await;
            tx.commit().await.unwrap();
            wanted.entry(o.to_string()).or_default().push(e.event_id);
        }
    }
    let consumer = h.consumer(&brokers(), &new_group(), rec.clone());
    // One delivery by hand: passed over, nothing recorded.
    let mut stray = envelope(orders[0]);
    stray.event_type = "SomethingElse".into();
    assert_eq!(consumer.deliver(&stray).await.unwrap(), Outcome::NotWanted);
    let consumer = Running::consumer(consumer);
    let relay = Running::relay(h.relay(&brokers()));
    let effects = h
        .wait_for_effects(orders.len() * 2, Duration::from_secs(30))
        .await;
    relay.stop().await;
    consumer.stop().await;
    let seen = by_consumer_and_aggregate(&effects);
    assert_eq!(
        seen.get("picky"),
        Some(&wanted),
        "every wanted event, once, in order"
    );
    assert_eq!(effects.len(), orders.len() * 2, "and nothing else");
    for id in unwanted.iter().chain([&stray.event_id]) {
        assert_eq!(rec.attempts_of(*id), 0, "the handler never saw {id}");
    }
    let inbox: Vec<String> = sqlx::query_scalar("SELECT DISTINCT event_type FROM inbox")
        .fetch_all(&h.db)
        .await
        .unwrap();
    assert_eq!(
        inbox,
        ["OrderConfirmed"],
        "no inbox row for an unwanted event"
    );
}
