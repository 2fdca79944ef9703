//! The failure cases the delivery guarantees rest on (docs/events.md): a relay crashing around
//! publishing, a broker outage, a slow send, rows that cannot be published (parked) and the
//! operator command that releases them, competing relays, and a consumer group losing a member.

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use shared::outbox::{OutboxRelay, RelayConfig, RelayHook, RelayStage};
use uuid::Uuid;

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(60);

/// Per aggregate, the event ids in the order they were first handled.
fn first_seen_order(effects: &[(Uuid, String, String)]) -> HashMap<String, Vec<Uuid>> {
    let mut seen = HashSet::new();
    let mut by_agg: HashMap<String, Vec<Uuid>> = HashMap::new();
    for (event, agg, _) in effects {
        if seen.insert(*event) {
            by_agg.entry(agg.clone()).or_default().push(*event);
        }
    }
    by_agg
}

/// A relay config for tests: quick polls and backoff.
fn quick() -> RelayConfig {
    RelayConfig {
        poll_interval: Duration::from_millis(100),
        base_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(500),
        ..RelayConfig::default()
    }
}

fn relay_with(h: &Harness, brokers: &str, config: RelayConfig) -> OutboxRelay {
    let producer = shared::kafka::producer(brokers, "test-relay").unwrap();
    OutboxRelay::new("test", h.db.clone(), producer, config)
}

/// Write `per` events for each of `orders`, one transaction per round (all orders' first events,
/// then all second events…), as a backlog built up during an outage looks.
async fn write_backlog(h: &Harness, orders: &[Uuid], per: usize) -> HashMap<String, Vec<Uuid>> {
    let mut written: HashMap<String, Vec<Uuid>> = HashMap::new();
    for _ in 0..per {
        let mut tx = h.db.begin().await.unwrap();
        for o in orders {
            let e = h.write_in(&mut tx, *o).await;
            written.entry(o.to_string()).or_default().push(e.event_id);
        }
        tx.commit().await.unwrap();
    }
    written
}

/// (published, parked, attempts, claimed_by) of the outbox row of `event`.
async fn row_state(h: &Harness, event: Uuid) -> (bool, bool, i32, Option<Uuid>) {
    sqlx::query_as(
        "SELECT published_at IS NOT NULL, parked_at IS NOT NULL, attempts, claimed_by
         FROM outbox WHERE event_id = $1",
    )
    .bind(event)
    .fetch_one(&h.db)
    .await
    .unwrap()
}

/// Poll `condition` until it holds; fail the test after `WAIT`.
async fn until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A hook that holds the relay at `stage` of the listed events (forever, or until `release` is
/// notified), telling `reached` each time it holds one.
fn hold_at(
    stage: RelayStage,
    events: Vec<Uuid>,
    reached: tokio::sync::mpsc::UnboundedSender<Uuid>,
    release: Arc<tokio::sync::Notify>,
) -> RelayHook {
    Arc::new(move |at, env| {
        let hold = at == stage && events.contains(&env.event_id);
        let (reached, release, event) = (reached.clone(), release.clone(), env.event_id);
        Box::pin(async move {
            if hold {
                let _ = reached.send(event);
                release.notified().await;
            }
        })
    })
}

#[tokio::test]
async fn a_relay_that_dies_holding_claims_is_taken_over_after_its_lease_and_each_event_takes_effect_once(
) {
    let h = Harness::new(3).await;
    // `lost` is claimed and its relay dies before sending it; `unmarked` is acknowledged by the
    // broker and its relay dies before marking it; `behind` waits in `unmarked`'s run.
    let lost = h.write(Uuid::now_v7()).await;
    let order = Uuid::now_v7();
    let unmarked = h.write(order).await;
    let behind = h.write(order).await;
    let (reached_tx, mut reached) = tokio::sync::mpsc::unbounded_channel();
    let never = Arc::new(tokio::sync::Notify::new());
    let before_send = hold_at(
        RelayStage::BeforeSend,
        vec![lost.event_id],
        reached_tx.clone(),
        never.clone(),
    );
    let after_send = hold_at(
        RelayStage::AfterSend,
        vec![unmarked.event_id],
        reached_tx,
        never.clone(),
    );
    let dying = relay_with(
        &h,
        &brokers(),
        RelayConfig {
            lease: Duration::from_secs(2),
            ..quick()
        },
    )
    .with_hook(Arc::new(move |stage, env| {
        let (a, b) = (before_send(stage, env), after_send(stage, env));
        Box::pin(async move {
            futures::join!(a, b);
        })
    }));
    let dying_id = dying.id();
    let (_stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(dying.run(rx));
    let mut held = HashSet::new();
    while held.len() < 2 {
        let event = tokio::time::timeout(WAIT, reached.recv())
            .await
            .expect("the relay reached both points")
            .unwrap();
        held.insert(event);
    }
    // The crash: the task is dropped mid-round, nothing recorded after the claim.
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    for e in [&lost, &unmarked, &behind] {
        let (published, _, attempts, claimed_by) = row_state(&h, e.event_id).await;
        assert!(!published, "the dead relay marked nothing");
        assert_eq!(
            (attempts, claimed_by),
            (1, Some(dying_id)),
            "claimed by the dead relay"
        );
    }
    assert_eq!(
        read_all(&brokers(), &h.topic, 1).await.len(),
        1,
        "`unmarked` really reached the broker before the crash"
    );

    let successor = relay_with(&h, &brokers(), quick());
    let successor_id = successor.id();
    let relay = Running::relay(successor);
    let c = Running::consumer(h.consumer(
        &brokers(),
        &format!("g-{}", Uuid::now_v7()),
        Recorder::new("c1"),
    ));
    // `behind` follows the re-published `unmarked` on the same partition: once it took effect,
    // the duplicate before it has been handled too.
    let handled = |e: Uuid| {
        let h = &h;
        async move { h.effects().await.iter().any(|x| x.0 == e) }
    };
    until("`lost` and `behind` took effect", || async {
        handled(lost.event_id).await && handled(behind.event_id).await
    })
    .await;
    c.stop().await;
    relay.stop().await;
    let effects: Vec<Uuid> = h.effects().await.into_iter().map(|e| e.0).collect();
    assert_eq!(effects.len(), 3, "each event took effect once: {effects:?}");
    assert_eq!(
        effects.iter().copied().collect::<HashSet<_>>(),
        HashSet::from([lost.event_id, unmarked.event_id, behind.event_id])
    );
    let pos = |e: Uuid| effects.iter().position(|x| *x == e).unwrap();
    assert!(pos(unmarked.event_id) < pos(behind.event_id), "order kept");
    for e in [&lost, &unmarked, &behind] {
        let (published, _, _, claimed_by) = row_state(&h, e.event_id).await;
        assert!(published);
        assert_eq!(claimed_by, Some(successor_id), "the successor published it");
    }
    assert_eq!(
        read_all(&brokers(), &h.topic, 4).await.len(),
        4,
        "`unmarked` went out twice"
    );
}

#[tokio::test]
async fn a_send_held_up_on_one_aggregate_neither_delays_marking_others_nor_the_next_round() {
    let h = Harness::new(3).await;
    let slow = h.write(Uuid::now_v7()).await;
    let others: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    let mut first = Vec::new();
    for o in &others {
        first.push(h.write(*o).await.event_id);
    }
    let (reached_tx, mut reached) = tokio::sync::mpsc::unbounded_channel();
    let release = Arc::new(tokio::sync::Notify::new());
    let relay = relay_with(&h, &brokers(), quick()).with_hook(hold_at(
        RelayStage::AfterSend,
        vec![slow.event_id],
        reached_tx,
        release.clone(),
    ));
    let running = Running::relay(relay);
    tokio::time::timeout(WAIT, reached.recv())
        .await
        .expect("the slow send was acknowledged and held")
        .unwrap();
    // The round that holds `slow` is still open: its other rows are marked all the same.
    until(
        "the other aggregates' rows are marked published",
        || async {
            let mut all = true;
            for e in &first {
                all &= row_state(&h, *e).await.0;
            }
            all
        },
    )
    .await;
    // And an event written now is published by a later round, not after the held one.
    let later = h.write(others[0]).await;
    until(
        "an event written during the held round is published",
        || async { row_state(&h, later.event_id).await.0 },
    )
    .await;
    assert!(
        !row_state(&h, slow.event_id).await.0,
        "`slow` is still held"
    );
    release.notify_one();
    until("`slow` is marked once released", || async {
        row_state(&h, slow.event_id).await.0
    })
    .await;
    running.stop().await;
}

#[tokio::test]
async fn an_undecodable_row_is_parked_and_only_its_aggregate_waits_behind_it() {
    let h = Harness::new(3).await;
    let (stuck, flowing) = (Uuid::now_v7(), Uuid::now_v7());
    let flowing_first = h.write(flowing).await;
    // A row written by a version whose envelope this one cannot read.
    let undecodable: i64 = sqlx::query_scalar(
        "INSERT INTO outbox (event_id, topic, aggregate_id, event_type, envelope)
         VALUES ($1, $2, $3, 'OrderConfirmed', '{\"schema\": \"v0\", \"order\": 7}')
         RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(&h.topic)
    .bind(stuck.to_string())
    .fetch_one(&h.db)
    .await
    .unwrap();
    let behind = h.write(stuck).await;
    let flowing_second = h.write(flowing).await;
    let service: &'static str = Box::leak(format!("parking-{}", Uuid::now_v7()).into_boxed_str());
    let metrics = shared::metrics::handle().unwrap();
    let relay = OutboxRelay::new(
        service,
        h.db.clone(),
        shared::kafka::producer(&brokers(), "test-relay").unwrap(),
        quick(),
    );

    let outcome = relay.drain().await.unwrap();

    assert_eq!((outcome.published, outcome.parked), (2, 1), "{outcome:?}");
    let (parked, error): (bool, Option<String>) = sqlx::query_as(
        "SELECT parked_at IS NOT NULL AND published_at IS NULL, last_error FROM outbox WHERE id = $1",
    )
    .bind(undecodable)
    .fetch_one(&h.db)
    .await
    .unwrap();
    assert!(parked);
    assert!(
        error.as_deref().unwrap_or("").contains("does not decode"),
        "{error:?}"
    );
    assert_eq!(
        row_state(&h, behind.event_id).await,
        (false, false, 0, None),
        "the event behind it waits, never tried"
    );
    assert!(row_state(&h, flowing_first.event_id).await.0);
    assert!(row_state(&h, flowing_second.event_id).await.0);
    assert_eq!(relay.record_backlog().await.unwrap().parked, 1);
    let gauge = format!("outbox_parked{{service=\"{service}\"}} ");
    let rendered = metrics.render();
    let value = rendered
        .lines()
        .find_map(|l| l.strip_prefix(&gauge))
        .and_then(|v| v.parse::<f64>().ok());
    assert_eq!(value, Some(1.0), "gauge exported: {rendered}");
}

#[tokio::test]
async fn a_record_the_broker_refuses_is_parked_after_max_attempts_and_only_its_aggregate_waits() {
    let h = Harness::new(3).await;
    let (stuck, flowing) = (Uuid::now_v7(), Uuid::now_v7());
    // Larger than the producer's `message.max.bytes`: refused every time, never a broker outage.
    let mut too_large = envelope(stuck);
    too_large.payload = serde_json::json!({ "blob": "x".repeat(2_000_000) });
    let mut tx = h.db.begin().await.unwrap();
    shared::outbox::enqueue_envelope(&mut tx, &h.topic, &too_large)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let behind = h.write(stuck).await;
    let flowing_event = h.write(flowing).await;
    let relay = Running::relay(relay_with(
        &h,
        &brokers(),
        RelayConfig {
            max_attempts: 3,
            ..quick()
        },
    ));
    until("the refused row is parked", || async {
        row_state(&h, too_large.event_id).await.1
    })
    .await;
    relay.stop().await;
    let (published, parked, attempts, _) = row_state(&h, too_large.event_id).await;
    assert_eq!((published, parked, attempts), (false, true, 3));
    let error: String = sqlx::query_scalar("SELECT last_error FROM outbox WHERE event_id = $1")
        .bind(too_large.event_id)
        .fetch_one(&h.db)
        .await
        .unwrap();
    assert!(error.contains("too large"), "{error}");
    assert_eq!(
        row_state(&h, behind.event_id).await,
        (false, false, 0, None),
        "the event behind it waits, never tried"
    );
    assert!(row_state(&h, flowing_event.event_id).await.0);
}

/// The database URL of the harness's test database.
async fn db_url(h: &Harness) -> String {
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&h.db)
        .await
        .unwrap();
    let base = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    format!("{}/{name}", &base[..base.rfind('/').unwrap()])
}

/// Run `koupang-outbox` with `args`: (exit code, stdout, stderr).
fn outbox_cli(url: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_koupang-outbox"))
        .env("DATABASE_URL", url)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn outbox_id(h: &Harness, event: Uuid) -> i64 {
    sqlx::query_scalar("SELECT id FROM outbox WHERE event_id = $1")
        .bind(event)
        .fetch_one(&h.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn parking_a_row_from_the_command_line_holds_back_its_aggregate_and_no_other() {
    let h = Harness::new(3).await;
    let url = db_url(&h).await;
    let (held, flowing) = (Uuid::now_v7(), Uuid::now_v7());
    let first = h.write(held).await;
    let second = h.write(held).await;
    let other = h.write(flowing).await;
    let id = outbox_id(&h, first.event_id).await.to_string();

    let (code, out, err) = outbox_cli(&url, &["park", &id, "--reason", "hold for support"]);
    assert_eq!(code, 0, "{out}{err}");
    h.relay(&brokers()).drain().await.unwrap();

    assert_eq!(row_state(&h, first.event_id).await, (false, true, 0, None));
    assert_eq!(
        row_state(&h, second.event_id).await,
        (false, false, 0, None)
    );
    assert!(row_state(&h, other.event_id).await.0);
    let (code, out, err) = outbox_cli(&url, &["list"]);
    assert_eq!(code, 0, "{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{id}\t")))
        .unwrap_or_else(|| panic!("row {id} listed: {out}"));
    let fields: Vec<&str> = line.split('\t').collect();
    assert_eq!(
        (fields[1], fields[7], fields[8]),
        (first.event_id.to_string().as_str(), "1", "hold for support"),
        "event id, one event waiting behind, the reason"
    );
    let (code, _, err) = outbox_cli(&url, &["park", &id, "--reason", "again"]);
    assert_eq!(code, 1, "a row already parked is reported: {err}");
}

#[tokio::test]
async fn retrying_a_parked_row_from_the_command_line_publishes_its_aggregate_in_order() {
    let h = Harness::new(3).await;
    let url = db_url(&h).await;
    let order = Uuid::now_v7();
    let events: Vec<Uuid> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(h.write(order).await.event_id);
        }
        v
    };
    let id = outbox_id(&h, events[0]).await;
    shared::outbox::park(&h.db, &[id], "held").await.unwrap();
    let relay = h.relay(&brokers());
    assert_eq!(relay.drain().await.unwrap().published, 0, "all held");

    let (code, out, err) = outbox_cli(&url, &["retry", &id.to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(row_state(&h, events[0]).await, (false, false, 0, None));
    assert_eq!(relay.drain().await.unwrap().published, 3);

    let on_topic: Vec<String> = read_all(&brokers(), &h.topic, 3)
        .await
        .into_iter()
        .map(|(headers, _)| header(&headers, "event_id").unwrap())
        .collect();
    let expected: Vec<String> = events.iter().map(Uuid::to_string).collect();
    assert_eq!(on_topic, expected, "published once each, in order");
    let (code, out, _) = outbox_cli(&url, &["list"]);
    assert_eq!((code, out.lines().count()), (0, 1), "nothing parked: {out}");
}

#[tokio::test]
async fn the_outbox_command_rejects_unknown_flags_and_incomplete_commands() {
    // Not a database URL: a command that parses fails at once when it connects.
    let url = "not-a-database-url";
    for args in [
        &["list", "--bogus"][..],
        &["--verbose", "list"],
        &["retry"],
        &["retry", "7", "--all"],
        &["retry", "seven"],
        &["park", "7"],
        &["list", "--limit", "many"],
        &["drop", "7"],
    ] {
        let (code, out, err) = outbox_cli(url, args);
        assert_eq!(code, 2, "{args:?} is a usage error: {out}{err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?} did nothing: {out}");
    }
    // Well-formed commands get past parsing (and fail on the database URL, exit 1).
    for args in [
        &["list"][..],
        &["list", "--limit", "5"],
        &["retry", "--all"],
        &["retry", "1", "2"],
        &["park", "3", "--reason", "why"],
    ] {
        let (code, _, err) = outbox_cli(url, args);
        assert_eq!(code, 1, "{args:?} parsed: {err}");
        assert!(err.starts_with("koupang-outbox: "), "{args:?}: {err}");
    }
}

/// A broker of this test's own, so stopping it disturbs no other test.
#[tokio::test]
async fn with_the_broker_down_writes_keep_committing_and_the_backlog_drains_in_order() {
    let mut broker = OwnBroker::start().await;
    let h = Harness::with_brokers(&broker.brokers(), 3).await;
    let relay = Running::relay(h.relay(&broker.brokers()));
    let orders: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
    let mut written: HashMap<String, Vec<Uuid>> = HashMap::new();
    for o in &orders {
        let e = h.write(*o).await;
        written.entry(o.to_string()).or_default().push(e.event_id);
    }
    broker.stop();
    // Several seconds of outage while the shop keeps taking writes.
    for round in 0..4 {
        for o in &orders {
            let e = h.write(*o).await;
            written.entry(o.to_string()).or_default().push(e.event_id);
        }
        if round == 1 {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let total: usize = written.values().map(Vec::len).sum();
    assert_eq!(total, 25, "every write committed during the outage");
    broker.restart().await;
    let c = Running::consumer(h.consumer(
        &broker.brokers(),
        &format!("g-{}", Uuid::now_v7()),
        Recorder::new("c1"),
    ));
    let effects = h.wait_for_effects(total, WAIT).await;
    c.stop().await;
    relay.stop().await;
    let seen = first_seen_order(&effects);
    assert_eq!(
        seen.values().map(Vec::len).sum::<usize>(),
        total,
        "nothing lost"
    );
    for (agg, events) in &written {
        assert_eq!(&seen[agg], events, "order of {agg} kept");
    }
}

#[tokio::test]
async fn three_relays_draining_a_preloaded_backlog_share_the_work_and_keep_every_orders_sequence() {
    let h = Harness::new(3).await;
    let orders: Vec<Uuid> = (0..40).map(|_| Uuid::now_v7()).collect();
    // The whole backlog exists before any relay runs: every order has 10 events queued, so only
    // the head-of-aggregate rule keeps two relays from publishing one order's events at once.
    let written = write_backlog(&h, &orders, 10).await;
    let total: usize = written.values().map(Vec::len).sum();
    let small_rounds = || RelayConfig {
        batch_size: 8,
        run_length: 3,
        ..quick()
    };
    let relays: Vec<OutboxRelay> = (0..3)
        .map(|_| relay_with(&h, &brokers(), small_rounds()))
        .collect();
    let ids: HashSet<Uuid> = relays.iter().map(OutboxRelay::id).collect();
    let running: Vec<Running> = relays.into_iter().map(Running::relay).collect();
    let c = Running::consumer(h.consumer(
        &brokers(),
        &format!("g-{}", Uuid::now_v7()),
        Recorder::new("c1"),
    ));
    let effects = h.wait_for_effects(total, WAIT).await;
    c.stop().await;
    for r in running {
        r.stop().await;
    }
    let seen = first_seen_order(&effects);
    for (agg, events) in &written {
        assert_eq!(&seen[agg], events, "order of {agg} kept");
    }
    assert_eq!(effects.len(), total, "each event took effect once");
    let publishers: Vec<(Uuid, i64)> = sqlx::query_as(
        "SELECT claimed_by, count(*) FROM outbox WHERE published_at IS NOT NULL GROUP BY claimed_by",
    )
    .fetch_all(&h.db)
    .await
    .unwrap();
    assert_eq!(
        publishers.iter().map(|p| p.0).collect::<HashSet<_>>(),
        ids,
        "each relay published some of the backlog: {publishers:?}"
    );
}

/// A relay producer like `shared::kafka::producer`, but whose records fail after `timeout`
/// without an acknowledgement (10 s in production), so a short outage makes publishes fail.
///
/// Not idempotent: with `enable.idempotence=true`, once records had timed out, tansu 0.6 answered
/// every later produce of that producer with "Unknown broker error", even after the broker was
/// back (reproduced twice; a fresh producer is not affected). That is a limit of the local broker
/// recorded in docs/events.md, not what this test is about: a run sends each row only after the
/// previous one was acknowledged, so per-order order does not depend on idempotence.
#[tokio::test]
async fn an_outage_longer_than_the_delivery_timeout_backs_off_and_drains_every_order_in_sequence() {
    let broker = OwnBroker::start().await;
    let h = Harness::with_brokers(&broker.brokers(), 3).await;
    // The relay's producer as the local stack makes it (not idempotent on tansu, see
    // `CommonConfig::kafka_idempotent_producer`) with a delivery timeout of 1.5 s, and the
    // factory that replaces it after 3 s of failures.
    let brokers = broker.brokers();
    let make = move || {
        shared::kafka::producer_with(&brokers, "test-relay", Duration::from_millis(1500), false)
    };
    let relay = Running::relay(
        OutboxRelay::new(
            "test",
            h.db.clone(),
            make().unwrap(),
            RelayConfig {
                base_backoff: Duration::from_millis(300),
                max_backoff: Duration::from_secs(2),
                producer_rebuild_after: Duration::from_secs(3),
                ..quick()
            },
        )
        .with_producer_factory(std::sync::Arc::new(make)),
    );
    let orders: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
    let mut written = write_backlog(&h, &orders, 1).await;
    until("the first events are published", || async {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(&h.db)
                .await
                .unwrap();
        pending == 0
    })
    .await;
    // The outage: the broker frozen (a stop-the-world pause, a hung disk). tansu restarted from
    // its SQLite file has been seen to reset every connection for minutes, which would test
    // tansu, not the relay; a frozen broker times deliveries out just the same.
    broker.pause();
    for (agg, events) in write_backlog(&h, &orders, 3).await {
        written.get_mut(&agg).unwrap().extend(events);
    }
    // Every order's head fails again and again and waits out a growing delay before the next
    // attempt; nothing behind a head is tried meanwhile.
    let backing_off = std::cell::Cell::new(false);
    until(
        "each order's head failed at least twice, one seen waiting out its backoff",
        || async {
            let (failed_twice, waiting): (i64, bool) = sqlx::query_as(
                "SELECT count(*) FILTER (WHERE attempts >= 2 AND last_error IS NOT NULL),
                        coalesce(bool_or(claimed_by IS NULL AND last_error IS NOT NULL
                                         AND next_attempt_at > now()), false)
                 FROM (SELECT DISTINCT ON (aggregate_id) attempts, last_error, claimed_by,
                              next_attempt_at
                       FROM outbox WHERE published_at IS NULL
                       ORDER BY aggregate_id, id) heads",
            )
            .fetch_one(&h.db)
            .await
            .unwrap();
            backing_off.set(backing_off.get() || waiting);
            failed_twice == orders.len() as i64 && backing_off.get()
        },
    )
    .await;
    let published_during_outage: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL")
            .fetch_one(&h.db)
            .await
            .unwrap();
    assert_eq!(published_during_outage, 4, "nothing published while down");
    let error: String =
        sqlx::query_scalar("SELECT last_error FROM outbox WHERE last_error IS NOT NULL LIMIT 1")
            .fetch_one(&h.db)
            .await
            .unwrap();
    assert!(error.contains("timed out"), "a delivery timeout: {error}");

    broker.resume();
    let c = Running::consumer(h.consumer(
        &broker.brokers(),
        &format!("g-{}", Uuid::now_v7()),
        Recorder::new("c1"),
    ));
    let total: usize = written.values().map(Vec::len).sum();
    let effects = h.wait_for_effects(total, WAIT).await;
    c.stop().await;
    relay.stop().await;
    let seen = first_seen_order(&effects);
    for (agg, events) in &written {
        assert_eq!(&seen[agg], events, "nothing lost, order of {agg} kept");
    }
    assert_eq!(effects.len(), total, "no event took effect twice");
    let (pending, parked): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE published_at IS NULL),
                count(*) FILTER (WHERE parked_at IS NOT NULL) FROM outbox",
    )
    .fetch_one(&h.db)
    .await
    .unwrap();
    assert_eq!((pending, parked), (0, 0), "timeouts never park a row");
}

/// A producer that can never deliver (a wrong address, a fatal error, tansu refusing it) must not
/// stall the outbox for good: after `producer_rebuild_after` of failures the relay asks its
/// factory for a new producer and publishes with that one.
#[tokio::test]
async fn a_relay_whose_producer_keeps_failing_replaces_it_from_its_factory_and_publishes() {
    let h = Harness::new(3).await;
    let dead = {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        format!("127.0.0.1:{port}")
    };
    let made = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let factory: shared::outbox::ProducerFactory = {
        let made = made.clone();
        Arc::new(move || {
            made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            shared::kafka::producer(&brokers(), "test-relay-fresh")
        })
    };
    let relay = Running::relay(
        OutboxRelay::new(
            "test",
            h.db.clone(),
            shared::kafka::producer_with(
                &dead,
                "test-relay-dead",
                Duration::from_millis(500),
                true,
            )
            .unwrap(),
            RelayConfig {
                producer_rebuild_after: Duration::from_secs(1),
                ..quick()
            },
        )
        .with_producer_factory(factory),
    );
    let c = Running::consumer(h.consumer(
        &brokers(),
        &format!("g-{}", Uuid::now_v7()),
        Recorder::new("c1"),
    ));
    let order = Uuid::now_v7();
    let env = h.write(order).await;
    let effects = h.wait_for_effects(1, WAIT).await;
    c.stop().await;
    relay.stop().await;
    assert_eq!(effects.len(), 1, "published once the producer was replaced");
    assert_eq!(effects[0].0, env.event_id);
    assert!(
        made.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the factory made the producer that published"
    );
    let attempts: i32 = sqlx::query_scalar("SELECT attempts FROM outbox WHERE aggregate_id = $1")
        .bind(order.to_string())
        .fetch_one(&h.db)
        .await
        .unwrap();
    assert!(attempts >= 2, "the dead producer failed first ({attempts})");
}
