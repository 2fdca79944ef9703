//! The failure cases the delivery guarantees rest on (docs/events.md): crashes around publishing,
//! a broker outage, competing relays, and a consumer group losing a member.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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

#[tokio::test]
async fn a_crash_between_commit_and_publish_still_publishes_once_to_consumers_eyes() {
    let h = Harness::new(3).await;
    // The state change committed; the relay that claimed the row died before publishing (its
    // claim is left behind, lease expired).
    let lost_claim = h.write(Uuid::now_v7()).await;
    sqlx::query("UPDATE outbox SET claimed_by = $1, claimed_until = now() - interval '1 second', attempts = 1 WHERE event_id = $2")
        .bind(Uuid::now_v7())
        .bind(lost_claim.event_id)
        .execute(&h.db)
        .await
        .unwrap();
    // Another event was published, but the relay died before marking it: it goes out again.
    let unmarked = h.write(Uuid::now_v7()).await;
    let relay = h.relay(&brokers());
    relay.drain().await.unwrap();
    sqlx::query("UPDATE outbox SET published_at = NULL WHERE event_id = $1")
        .bind(unmarked.event_id)
        .execute(&h.db)
        .await
        .unwrap();

    // "Restart": a new relay instance.
    let restarted = h.relay(&brokers());
    restarted.drain().await.unwrap();
    let c = Running::consumer(h.consumer(
        &brokers(),
        &format!("g-{}", Uuid::now_v7()),
        Recorder::new("c1"),
    ));
    h.wait_for_effects(2, WAIT).await;
    // Give the duplicate of `unmarked` time to arrive and be absorbed.
    tokio::time::sleep(Duration::from_secs(1)).await;
    c.stop().await;
    let effects = h
        .effects()
        .await
        .into_iter()
        .map(|e| e.0)
        .collect::<Vec<_>>();
    assert_eq!(
        effects
            .iter()
            .filter(|e| **e == lost_claim.event_id)
            .count(),
        1,
        "{effects:?}"
    );
    assert_eq!(
        effects.iter().filter(|e| **e == unmarked.event_id).count(),
        1,
        "{effects:?}"
    );
    let on_topic = read_all(&brokers(), &h.topic, 3).await;
    assert_eq!(
        on_topic.len(),
        3,
        "the unmarked event really was published twice"
    );
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(&h.db)
        .await
        .unwrap();
    assert_eq!(pending, 0);
}

/// A broker of this test's own, so stopping it disturbs no other test.
struct OwnBroker {
    dir: std::path::PathBuf,
    port: u16,
    child: Option<Child>,
}

impl OwnBroker {
    fn tansu() -> String {
        std::env::var("TANSU_BIN").unwrap_or_else(|_| {
            format!(
                "{}/.cache/koupang/bin/tansu",
                std::env::var("HOME").unwrap_or_default()
            )
        })
    }

    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("koupang-broker-{}", Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut b = Self {
            dir,
            port,
            child: None,
        };
        b.restart().await;
        b
    }

    fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    async fn restart(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(Self::tansu())
            .current_dir(&self.dir)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "sqlite://tansu.db",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu (built by make test; set TANSU_BIN)");
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("own broker did not start");
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

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
async fn two_relays_on_one_outbox_keep_per_order_sequence_and_lose_nothing() {
    let h = Harness::new(3).await;
    let orders: Vec<Uuid> = (0..20).map(|_| Uuid::now_v7()).collect();
    let r1 = Running::relay(h.relay(&brokers()));
    let r2 = Running::relay(h.relay(&brokers()));
    let mut written: HashMap<String, Vec<Uuid>> = HashMap::new();
    for _ in 0..8 {
        for o in &orders {
            let e = h.write(*o).await;
            written.entry(o.to_string()).or_default().push(e.event_id);
        }
    }
    let c = Running::consumer(h.consumer(
        &brokers(),
        &format!("g-{}", Uuid::now_v7()),
        Recorder::new("c1"),
    ));
    let effects = h.wait_for_effects(160, WAIT).await;
    c.stop().await;
    r1.stop().await;
    r2.stop().await;
    let seen = first_seen_order(&effects);
    for (agg, events) in &written {
        assert_eq!(&seen[agg], events, "order of {agg} kept");
    }
    assert_eq!(effects.len(), 160, "each event took effect once");
}

#[tokio::test]
async fn a_group_of_two_consumers_splits_partitions_and_losing_one_midstream_loses_nothing() {
    // Its own broker: the shared one's group coordinator also serves every service test's
    // groups, and under that load tansu has handed out stale assignments (ADR 003).
    let broker = OwnBroker::start().await;
    let h = Harness::with_brokers(&broker.brokers(), 6).await;
    let orders: Vec<Uuid> = (0..60).map(|_| Uuid::now_v7()).collect();
    let mut all = HashSet::new();
    for _ in 0..2 {
        for o in &orders {
            all.insert(h.write(*o).await.event_id);
        }
    }
    let group = format!("g-{}", Uuid::now_v7());
    let c1 = Running::consumer(h.consumer(&broker.brokers(), &group, Recorder::new("c1")));
    let c2 = Running::consumer(h.consumer(&broker.brokers(), &group, Recorder::new("c2")));
    // Let the group form before traffic, so both members get partitions.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let relay = Running::relay(h.relay(&broker.brokers()));
    let first = h.wait_for_effects(30, WAIT).await;
    assert!(first.len() >= 30);
    c1.stop().await;
    for _ in 0..2 {
        for o in &orders {
            all.insert(h.write(*o).await.event_id);
        }
    }
    let effects = h.wait_for_effects(all.len(), WAIT).await;
    relay.stop().await;
    c2.stop().await;
    let handled: HashSet<Uuid> = effects.iter().map(|e| e.0).collect();
    let missing: Vec<&Uuid> = all.difference(&handled).collect();
    if !missing.is_empty() {
        let pending: Vec<(Uuid, Option<chrono::DateTime<chrono::Utc>>, i32)> = sqlx::query_as(
            "SELECT event_id, published_at, attempts FROM outbox WHERE event_id = ANY($1)",
        )
        .bind(missing.iter().map(|u| **u).collect::<Vec<_>>())
        .fetch_all(&h.db)
        .await
        .unwrap();
        panic!(
            "{} of {} events never handled; their outbox rows: {pending:?}",
            missing.len(),
            all.len()
        );
    }
    assert_eq!(effects.len(), all.len(), "and each exactly once");
    let by: HashSet<&str> = effects.iter().map(|e| e.2.as_str()).collect();
    assert!(
        by.contains("c1") && by.contains("c2"),
        "both members did work: {by:?}"
    );
}
