//! Fixtures: a database with the platform tables and an `effects` table, unique topics, a
//! recording handler that can be told to fail, and helpers to write events and wait for effects.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use shared::consumer::{BoxFuture, ConsumerConfig, EventConsumer, EventHandler, HandlerError};
use shared::events::{Envelope, EventMeta, OrderConfirmed, SkuQuantity};
use shared::outbox::{OutboxRelay, RelayConfig};
use shared::test_utils::TestDb;
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;
use uuid::Uuid;

pub fn brokers() -> String {
    std::env::var("TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:19092".into())
}

pub struct Harness {
    pub db: PgPool,
    pub topic: String,
    _test_db: TestDb,
}

impl Harness {
    pub async fn new(partitions: i32) -> Self {
        Self::with_brokers(&brokers(), partitions).await
    }

    pub async fn with_brokers(brokers: &str, partitions: i32) -> Self {
        shared::test_utils::init_logs();
        let test_db = TestDb::create("backbone", &shared::db::PLATFORM_MIGRATOR)
            .await
            .unwrap();
        let db = sqlx::postgres::PgPoolOptions::new()
            .max_connections(10)
            .connect(&test_db.url)
            .await
            .unwrap();
        sqlx::query(
            "CREATE TABLE effects (
                seq bigserial PRIMARY KEY,
                event_id uuid NOT NULL,
                aggregate_id text NOT NULL,
                consumer text NOT NULL,
                trace_id text)",
        )
        .execute(&db)
        .await
        .unwrap();
        let topic = format!("test.{}", Uuid::now_v7().simple());
        shared::kafka::ensure_topics(brokers, &[&topic], partitions)
            .await
            .unwrap();
        Self {
            db,
            topic,
            _test_db: test_db,
        }
    }

    /// Write one event for `order` into the outbox, in its own transaction.
    pub async fn write(&self, order: Uuid) -> Envelope {
        let mut tx = self.db.begin().await.unwrap();
        let env = self.write_in(&mut tx, order).await;
        tx.commit().await.unwrap();
        env
    }

    pub async fn write_in(&self, tx: &mut PgConnection, order: Uuid) -> Envelope {
        let env = envelope(order);
        shared::outbox::enqueue_envelope(tx, &self.topic, &env)
            .await
            .unwrap();
        env
    }

    pub fn relay(&self, brokers: &str) -> OutboxRelay {
        let producer = shared::kafka::producer(brokers, "test-relay").unwrap();
        OutboxRelay::new(
            "test",
            self.db.clone(),
            producer,
            RelayConfig {
                poll_interval: Duration::from_millis(100),
                base_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_millis(500),
                ..RelayConfig::default()
            },
        )
    }

    pub fn consumer(&self, brokers: &str, group: &str, handler: Arc<Recorder>) -> EventConsumer {
        self.consumer_with(brokers, group, handler, |_| {})
    }

    /// A consumer of the harness topic with short retry delays, configured further by `customise`.
    pub fn consumer_with(
        &self,
        brokers: &str,
        group: &str,
        handler: Arc<Recorder>,
        customise: impl FnOnce(&mut ConsumerConfig),
    ) -> EventConsumer {
        let mut config = ConsumerConfig::new(brokers, group, &[&self.topic]);
        config.base_backoff = Duration::from_millis(50);
        config.max_backoff = Duration::from_millis(200);
        customise(&mut config);
        EventConsumer::postgres(config, self.db.clone(), handler).unwrap()
    }

    /// Effects recorded so far: (event_id, aggregate_id, consumer) in the order they committed.
    pub async fn effects(&self) -> Vec<(Uuid, String, String)> {
        sqlx::query_as("SELECT event_id, aggregate_id, consumer FROM effects ORDER BY seq")
            .fetch_all(&self.db)
            .await
            .unwrap()
    }

    /// Wait (bounded) until at least `n` effects exist; returns them.
    pub async fn wait_for_effects(
        &self,
        n: usize,
        within: Duration,
    ) -> Vec<(Uuid, String, String)> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let effects = self.effects().await;
            if effects.len() >= n || tokio::time::Instant::now() > deadline {
                return effects;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn envelope(order: Uuid) -> Envelope {
    Envelope::new(
        "test",
        &OrderConfirmed {
            order_id: order,
            buyer_id: Uuid::nil(),
            items: vec![SkuQuantity {
                sku_id: Uuid::nil(),
                quantity: 1,
            }],
        },
        &EventMeta::default(),
    )
    .unwrap()
}

/// What the recording handler should do with an event.
#[derive(Debug, Clone, Copy)]
pub enum Plan {
    /// Fail transiently this many more times, then succeed.
    Transient(u32),
    Permanent,
    Panic,
}

/// Records every handled event as a row of `effects`, in the handler's transaction.
pub struct Recorder {
    pub name: String,
    pub plans: Mutex<HashMap<Uuid, Plan>>,
    pub attempts: Mutex<HashMap<Uuid, u32>>,
    /// Event types it does not want (`EventHandler::wants`).
    pub unwanted: Mutex<Vec<String>>,
}

impl Recorder {
    pub fn new(name: &str) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_owned(),
            plans: Mutex::new(HashMap::new()),
            attempts: Mutex::new(HashMap::new()),
            unwanted: Mutex::new(Vec::new()),
        })
    }

    /// Stop wanting events of `event_type`.
    pub fn not_wanting(&self, event_type: &str) {
        self.unwanted.lock().unwrap().push(event_type.to_owned());
    }

    pub fn plan(&self, event: Uuid, plan: Plan) {
        self.plans.lock().unwrap().insert(event, plan);
    }

    pub fn attempts_of(&self, event: Uuid) -> u32 {
        self.attempts
            .lock()
            .unwrap()
            .get(&event)
            .copied()
            .unwrap_or(0)
    }
}

impl EventHandler for Recorder {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            *self
                .attempts
                .lock()
                .unwrap()
                .entry(event.event_id)
                .or_default() += 1;
            let plan = self.plans.lock().unwrap().get(&event.event_id).copied();
            match plan {
                Some(Plan::Transient(n)) if n > 0 => {
                    self.plan(event.event_id, Plan::Transient(n - 1));
                    return Err(HandlerError::Transient(anyhow::anyhow!("database hiccup")));
                }
                Some(Plan::Permanent) => {
                    return Err(HandlerError::Permanent(anyhow::anyhow!(
                        "order does not exist"
                    )));
                }
                Some(Plan::Panic) => panic!("handler bug for {}", event.event_id),
                _ => {}
            }
            let trace_id = {
                use opentelemetry::trace::TraceContextExt;
                use tracing_opentelemetry::OpenTelemetrySpanExt;
                let ctx = tracing::Span::current().context();
                let sc = ctx.span().span_context().clone();
                sc.is_valid().then(|| sc.trace_id().to_string())
            };
            sqlx::query("INSERT INTO effects (event_id, aggregate_id, consumer, trace_id) VALUES ($1, $2, $3, $4)")
                .bind(event.event_id)
                .bind(&event.aggregate_id)
                .bind(&self.name)
                .bind(trace_id)
                .execute(&mut *tx)
                .await?;
            Ok(())
        })
    }

    fn wants(&self, event_type: &str) -> bool {
        !self
            .unwanted
            .lock()
            .unwrap()
            .iter()
            .any(|t| t == event_type)
    }
}

/// A running background task with its stop switch.
pub struct Running {
    stop: watch::Sender<bool>,
    handle: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn relay(relay: OutboxRelay) -> Self {
        let (stop, rx) = watch::channel(false);
        Self {
            stop,
            handle: tokio::spawn(relay.run(rx)),
        }
    }

    pub fn consumer(consumer: EventConsumer) -> Self {
        let (stop, rx) = watch::channel(false);
        Self {
            stop,
            handle: tokio::spawn(consumer.run(rx)),
        }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(15), self.handle).await;
    }
}

/// Read every message currently on `topic` (from the start) with a throwaway group.
pub async fn read_all(
    brokers: &str,
    topic: &str,
    expect: usize,
) -> Vec<(Vec<(String, String)>, Option<Vec<u8>>)> {
    let consumer: StreamConsumer =
        shared::kafka::consumer_config(brokers, &format!("reader-{}", Uuid::now_v7()))
            .create()
            .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while out.len() < expect && tokio::time::Instant::now() < deadline {
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            out.push((
                shared::kafka::header_pairs(m.headers()),
                m.payload().map(<[u8]>::to_vec),
            ));
        }
    }
    out
}

/// Publish raw bytes to a topic (for duplicates and poison messages).
pub async fn produce_raw(
    brokers: &str,
    topic: &str,
    key: &str,
    payload: &[u8],
    headers: &[(&str, String)],
) {
    use rdkafka::producer::FutureRecord;
    let producer = shared::kafka::producer(brokers, "test-raw").unwrap();
    producer
        .send(
            FutureRecord::to(topic)
                .key(key)
                .payload(payload)
                .headers(shared::kafka::headers(headers)),
            rdkafka::util::Timeout::After(Duration::from_secs(10)),
        )
        .await
        .unwrap();
}

/// The value of header `key` among `(name, value)` pairs.
pub fn header(headers: &[(String, String)], key: &str) -> Option<String> {
    headers
        .iter()
        .find(|(n, _)| n == key)
        .map(|(_, v)| v.clone())
}

/// A broker process of the test's own, which the test can pause and resume.
pub struct OwnBroker {
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

    pub async fn start() -> Self {
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

    /// The broker's log, appended to across restarts; kept when the test fails.
    fn log(&self) -> Stdio {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("tansu.log"))
            .map_or_else(|_| Stdio::null(), Stdio::from)
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub async fn restart(&mut self) {
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
            .stdout(self.log())
            .stderr(self.log())
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

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("broker running").id();
        let status = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {sig} {pid}");
    }

    /// Freeze the broker process (connections stay open, nothing answers).
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-CONT", &c.id().to_string()])
                .status();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!("the broker's log and storage: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Per consumer, per aggregate, the event ids in the order they took effect.
pub fn by_consumer_and_aggregate(
    effects: &[(Uuid, String, String)],
) -> HashMap<String, HashMap<String, Vec<Uuid>>> {
    let mut out: HashMap<String, HashMap<String, Vec<Uuid>>> = HashMap::new();
    for (event, agg, consumer) in effects {
        out.entry(consumer.clone())
            .or_default()
            .entry(agg.clone())
            .or_default()
            .push(*event);
    }
    out
}

/// Write one event for each order, publish it, and wait until every one of `consumers` handled
/// all written so far: each once, per order in the written order.
pub async fn write_round_and_wait(
    h: &Harness,
    orders: &[Uuid],
    consumers: &[&str],
    written: &mut HashMap<String, Vec<Uuid>>,
    round: &str,
    within: Duration,
) {
    for o in orders {
        let e = h.write(*o).await;
        written.entry(o.to_string()).or_default().push(e.event_id);
    }
    let total: usize = written.values().map(Vec::len).sum::<usize>() * consumers.len();
    let effects = h.wait_for_effects(total, within).await;
    let seen = by_consumer_and_aggregate(&effects);
    for c in consumers {
        assert_eq!(
            seen.get(*c),
            Some(&*written),
            "{round}: consumer {c} handled every event, once, in order, within {within:?}"
        );
    }
    assert_eq!(effects.len(), total, "{round}: nothing else");
}

/// `test_utils::eventually` for a condition that needs no I/O.
pub async fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    shared::test_utils::eventually(what, within, || {
        let done = cond();
        async move { done.then_some(()) }
    })
    .await
}

/// A consumer group name no other test uses.
pub fn new_group() -> String {
    format!("g-{}", Uuid::now_v7())
}
