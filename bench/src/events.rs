//! The event backbone under load: relay throughput from a pre-filled outbox (one event per order,
//! and the backlog an outage leaves: 5 and 20 queued events per order, drained with the relay's
//! runs and with heads only), and commit→handled latency through relay, broker and an inbox
//! consumer at a steady write rate. Uses its own database (`koupang_bench_events`, recreated each
//! run) and its own topic on the given broker.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use shared::consumer::{BoxFuture, ConsumerConfig, EventConsumer, EventHandler, HandlerError};
use shared::events::{Envelope, EventMeta, OrderConfirmed, SkuQuantity};
use shared::outbox::{OutboxRelay, RelayConfig};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::watch;
use uuid::Uuid;

pub struct EventRows {
    pub relay_events: usize,
    pub relay_secs: f64,
    pub backlogs: Vec<BacklogDrain>,
    pub rate: u32,
    pub latency: Vec<Duration>,
    pub latency_expected: usize,
    /// The steady-rate events' time split at the relay: commit→published (outbox `created_at` to
    /// `published_at`) and published→handled (to the inbox's `handled_at`), p50 / p90 / p99 in ms,
    /// from Postgres timestamps.
    pub split: Option<([f64; 3], [f64; 3])>,
    /// commit→handled of single events each written after a quiet spell (the consumer dozing).
    pub after_quiet: Vec<Duration>,
    /// The broker's CPU (percent of one core) while the latency consumer sat idle, when
    /// `BENCH_BROKER_PID` names the broker process (`scripts/bench` sets it).
    pub idle_cpu: Option<IdleCpu>,
}

pub struct IdleCpu {
    pub percent: f64,
    pub secs: u64,
    pub fetch_wait: Duration,
    /// The consumer dozed after this long idle (ADR 014), or never.
    pub doze_after: Option<Duration>,
}

/// CPU time (user + system) of process `pid` so far, in clock ticks, from `/proc/<pid>/stat`.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let tick = |i: usize| -> anyhow::Result<u64> {
        Ok(fields.get(i).context("short /proc stat")?.parse::<u64>()?)
    };
    Ok(tick(11)? + tick(12)?)
}

/// The broker's CPU over `secs` seconds (percent of one core), as `top` would show it.
async fn idle_broker_cpu(pid: u32, secs: u64) -> anyhow::Result<f64> {
    // USER_HZ, the unit of /proc's times: 100 on Linux.
    const TICKS_PER_SEC: f64 = 100.0;
    let before = cpu_ticks(pid)?;
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let used = (cpu_ticks(pid)? - before) as f64 / TICKS_PER_SEC;
    Ok(100.0 * used / started.elapsed().as_secs_f64())
}

/// One drain of a backlog with several events per order.
pub struct BacklogDrain {
    pub per_aggregate: usize,
    /// `RelayConfig::run_length`: 1 is the heads-only claim (one event per order per round).
    pub run_length: i64,
    pub events: usize,
    pub secs: f64,
}

/// Queue `events` events, `per` per order, written as an outage leaves them (every order's first
/// event, then every order's second…), and time one relay draining them.
async fn backlog_drain(
    pool: &PgPool,
    brokers: &str,
    topic: &str,
    events: usize,
    per: usize,
    run_length: i64,
) -> anyhow::Result<BacklogDrain> {
    let orders: Vec<Uuid> = (0..events / per).map(|_| Uuid::now_v7()).collect();
    for _ in 0..per {
        for chunk in orders.chunks(1000) {
            let mut tx = pool.begin().await?;
            for order in chunk {
                shared::outbox::enqueue_envelope(&mut tx, topic, &event(*order)?).await?;
            }
            tx.commit().await?;
        }
    }
    let config = RelayConfig {
        batch_size: 1000,
        run_length,
        ..RelayConfig::default()
    };
    let producer = shared::kafka::producer(brokers, "bench-relay")?;
    let relay = OutboxRelay::new("bench", pool.clone(), producer, config);
    let started = Instant::now();
    let drained = relay.drain().await?;
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(drained.failed == 0, "{} publishes failed", drained.failed);
    anyhow::ensure!(
        drained.published == orders.len() * per,
        "drained {} of {}",
        drained.published,
        orders.len() * per
    );
    Ok(BacklogDrain {
        per_aggregate: per,
        run_length,
        events: drained.published,
        secs,
    })
}

struct Latency(Arc<Mutex<Vec<Duration>>>);

impl EventHandler for Latency {
    fn handle<'a>(
        &'a self,
        _tx: &'a mut PgConnection,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let age = (chrono::Utc::now() - event.occurred_at)
                .to_std()
                .unwrap_or_default();
            if let Ok(mut v) = self.0.lock() {
                v.push(age);
            }
            Ok(())
        })
    }
}

fn event(order: Uuid) -> anyhow::Result<Envelope> {
    Ok(Envelope::new(
        "bench",
        &OrderConfirmed {
            order_id: order,
            buyer_id: Uuid::nil(),
            items: vec![SkuQuantity {
                sku_id: Uuid::nil(),
                quantity: 1,
            }],
        },
        &EventMeta::default(),
    )?)
}

/// `BENCH_FETCH_WAIT_MS`: the consumer's fetch wait for this run, to compare values (ADR 011).
fn fetch_wait_override() -> anyhow::Result<Option<Duration>> {
    match std::env::var("BENCH_FETCH_WAIT_MS") {
        Ok(ms) => Ok(Some(Duration::from_millis(
            ms.parse().context("BENCH_FETCH_WAIT_MS")?,
        ))),
        Err(_) => Ok(None),
    }
}

/// `BENCH_DOZE_AFTER_MS`: the consumer dozes after this long idle, probing up to every 500 ms as
/// on `make up` (ADR 014); 0 = never. Default 2000, the local profile's.
fn doze() -> anyhow::Result<Option<shared::consumer::Doze>> {
    let after: u64 = match std::env::var("BENCH_DOZE_AFTER_MS") {
        Ok(ms) => ms.parse().context("BENCH_DOZE_AFTER_MS")?,
        Err(_) => 2000,
    };
    Ok((after > 0).then(|| shared::consumer::Doze {
        after: Duration::from_millis(after),
        first_probe: Duration::from_millis(shared::config::DOZE_FIRST_PROBE_MS),
        max_probe: Duration::from_millis(500),
        deep_after: shared::consumer::DOZE_DEEP_AFTER,
    }))
}

/// Where the steady-rate events spent their time, from the outbox's and the inbox's timestamps.
async fn split(pool: &PgPool, topic: &str) -> anyhow::Result<Option<([f64; 3], [f64; 3])>> {
    let row: (Option<Vec<f64>>, Option<Vec<f64>>) = sqlx::query_as(
        "SELECT percentile_cont(ARRAY[0.5, 0.9, 0.99]::float8[]) WITHIN GROUP
                    (ORDER BY extract(epoch FROM o.published_at - o.created_at) * 1000),
                percentile_cont(ARRAY[0.5, 0.9, 0.99]::float8[]) WITHIN GROUP
                    (ORDER BY extract(epoch FROM i.handled_at - o.published_at) * 1000)
           FROM outbox o JOIN inbox i ON i.event_id = o.event_id
          WHERE o.topic = $1 AND o.published_at IS NOT NULL",
    )
    .bind(topic)
    .fetch_one(pool)
    .await?;
    let three = |v: Option<Vec<f64>>| -> Option<[f64; 3]> { v?.try_into().ok() };
    Ok(three(row.0).zip(three(row.1)))
}

async fn fresh_db(admin_url: &str) -> anyhow::Result<PgPool> {
    let mut admin = PgConnection::connect(admin_url)
        .await
        .context("Postgres for the bench")?;
    sqlx::query("DROP DATABASE IF EXISTS koupang_bench_events WITH (FORCE)")
        .execute(&mut admin)
        .await?;
    sqlx::query("CREATE DATABASE koupang_bench_events")
        .execute(&mut admin)
        .await?;
    let url = match admin_url.rfind('/') {
        Some(i) => format!("{}/koupang_bench_events", &admin_url[..i]),
        None => anyhow::bail!("database url without a path"),
    };
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .connect(&url)
        .await?;
    shared::db::PLATFORM_MIGRATOR.run(&pool).await?;
    Ok(pool)
}

pub async fn run(
    admin_url: &str,
    brokers: &str,
    prefill: usize,
    rate: u32,
    seconds: u64,
) -> anyhow::Result<EventRows> {
    let pool = fresh_db(admin_url).await?;
    let topic = format!("bench.{}", Uuid::now_v7().simple());
    shared::kafka::ensure_topics(brokers, &[&topic], 6).await?;

    // 1. Relay throughput: a backlog of `prefill` events (one per order) drained by one relay.
    for chunk in 0..prefill.div_ceil(1000) {
        let mut tx = pool.begin().await?;
        for _ in 0..1000.min(prefill - chunk * 1000) {
            shared::outbox::enqueue_envelope(&mut tx, &topic, &event(Uuid::now_v7())?).await?;
        }
        tx.commit().await?;
    }
    let producer = shared::kafka::producer(brokers, "bench-relay")?;
    let config = RelayConfig {
        batch_size: 1000,
        poll_interval: Duration::from_millis(50),
        ..RelayConfig::default()
    };
    let relay = OutboxRelay::new("bench", pool.clone(), producer.clone(), config.clone());
    let started = Instant::now();
    let drained = relay.drain().await?;
    let relay_secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(drained.failed == 0, "{} publishes failed", drained.failed);

    // 1b. The backlog after an outage: several events per order, drained with runs and heads-only.
    let mut backlogs = Vec::new();
    for per in [5, 20] {
        for run_length in [RelayConfig::default().run_length, 1] {
            backlogs.push(backlog_drain(&pool, brokers, &topic, prefill, per, run_length).await?);
        }
    }

    // The drains above leave tens of thousands of dead outbox row versions; until autovacuum
    // (a minute away at best) clears them, every relay round wades through them (p50 53 ms
    // instead of 16 ms at 500/s: docs/events.md). The latency run measures a vacuumed table.
    if std::env::var("BENCH_NO_VACUUM").is_err() {
        sqlx::query("VACUUM ANALYZE outbox").execute(&pool).await?;
    }
    // 2. Latency at a steady rate: writer → outbox → relay (LISTEN) → broker → consumer.
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let live_topic = format!("{topic}.live");
    shared::kafka::ensure_topics(brokers, &[&live_topic], 6).await?;
    let mut consumer_config = ConsumerConfig::new(
        brokers,
        &format!("bench-{}", Uuid::now_v7()),
        &[&live_topic],
    );
    if let Some(wait) = fetch_wait_override()? {
        consumer_config.fetch_wait = wait;
    }
    consumer_config.doze = doze()?;
    let fetch_wait = consumer_config.fetch_wait;
    let doze_after = consumer_config.doze.map(|d| d.after);
    let consumer = EventConsumer::postgres(
        consumer_config,
        pool.clone(),
        Arc::new(Latency(latencies.clone())),
    )?;
    let consumer_task = tokio::spawn(consumer.run(stop_rx.clone()));
    let relay_task =
        tokio::spawn(OutboxRelay::new("bench", pool.clone(), producer, config).run(stop_rx));
    // Let the consumer join its group before the clock starts, then wake it with one event (a
    // dozing consumer would add a probe interval to the run's first events: that cost is
    // measured on its own below).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut tx = pool.begin().await?;
    shared::outbox::enqueue_envelope(&mut tx, &live_topic, &event(Uuid::now_v7())?).await?;
    tx.commit().await?;
    let warm = Instant::now() + Duration::from_secs(10);
    while latencies.lock().map(|v| v.is_empty()).unwrap_or(true) && Instant::now() < warm {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    if let Ok(mut v) = latencies.lock() {
        v.clear();
    }
    let total = (rate as u64 * seconds) as usize;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for _ in 0..total {
        tick.tick().await;
        let mut tx = pool.begin().await?;
        shared::outbox::enqueue_envelope(&mut tx, &live_topic, &event(Uuid::now_v7())?).await?;
        tx.commit().await?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while latencies.lock().map(|v| v.len()).unwrap_or(0) < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // 3. The idle cost: the consumer stays subscribed with nothing to read.
    let idle_cpu = match std::env::var("BENCH_BROKER_PID") {
        Ok(pid) => {
            // Let the last fetches and commits settle first (and the consumer doze off).
            tokio::time::sleep(Duration::from_secs(2) + doze_after.unwrap_or_default()).await;
            let secs = 5;
            Some(IdleCpu {
                percent: idle_broker_cpu(pid.parse().context("BENCH_BROKER_PID")?, secs).await?,
                secs,
                fetch_wait,
                doze_after,
            })
        }
        Err(_) => None,
    };
    // 4. The first event after a quiet spell (dozing, probing at its longest interval): what one
    //    hop costs on an idle stack.
    let mut after_quiet = Vec::new();
    if let Some(after) = doze_after {
        for _ in 0..5 {
            tokio::time::sleep(after + Duration::from_millis(1500)).await;
            let seen = latencies.lock().map(|v| v.len()).unwrap_or(0);
            let mut tx = pool.begin().await?;
            shared::outbox::enqueue_envelope(&mut tx, &live_topic, &event(Uuid::now_v7())?).await?;
            tx.commit().await?;
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let got = latencies.lock().ok().and_then(|v| v.get(seen).copied());
                if let Some(l) = got {
                    after_quiet.push(l);
                    break;
                }
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "an event after a quiet spell was not handled in 10 s"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }
    let _ = stop_tx.send(true);
    let _ = consumer_task.await;
    let _ = relay_task.await;
    let latency = latencies.lock().map(|v| v.clone()).unwrap_or_default();
    let split = split(&pool, &live_topic).await?;
    Ok(EventRows {
        relay_events: drained.published,
        relay_secs,
        backlogs,
        rate,
        latency,
        latency_expected: total,
        split,
        after_quiet,
        idle_cpu,
    })
}
