//! The normal path and the per-message failure cases: duplicates, poison, transient and permanent
//! errors, panics, re-drive, the Redis de-dup, and trace context across the hop.

use std::sync::Arc;
use std::time::Duration;

use shared::consumer::{BoxFuture, ConsumerConfig, EventConsumer, HandlerError, RedisEventHandler};
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
    let prefix = shared::test_utils::unique_redis_prefix();
    let client = redis::Client::open(shared::test_utils::redis_url()).unwrap();
    let conn = redis::aio::ConnectionManager::new(client).await.unwrap();
    let group = format!("g-{}", Uuid::now_v7());
    let mut config = ConsumerConfig::new(&brokers(), &group, &[&h.topic]);
    config.base_backoff = Duration::from_millis(50);
    let consumer =
        EventConsumer::redis(config, conn.clone(), &prefix, Arc::new(RedisCounter)).unwrap();
    let c = Running::consumer(consumer);
    let counter = format!("{prefix}inbox:{group}:count");
    let mut c2 = conn.clone();
    let mut handled_list: Vec<String> = vec![];
    for _ in 0..300 {
        handled_list = redis::cmd("LRANGE")
            .arg(format!("{counter}:events"))
            .arg(0)
            .arg(-1)
            .query_async(&mut c2)
            .await
            .unwrap();
        if !handled_list.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the two duplicates arrive too.
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.stop().await;
    let count: i64 = redis::cmd("GET")
        .arg(&counter)
        .query_async(&mut c2)
        .await
        .unwrap();
    assert_eq!(count, 1, "three deliveries, one effect");
    assert_eq!(handled_list, vec![env.event_id.to_string()]);
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
    let (backlog, age) = relay.record_backlog().await.unwrap();
    assert_eq!(backlog, 1, "the unpublished row is the backlog");
    assert!(age >= 0.0);
}
