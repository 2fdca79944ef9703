//! `TestApp`: a real catalog service on `127.0.0.1:0` with its own database (copied from a
//! migrated template), Redis key prefix and topic prefix on the test broker; tokens are minted
//! with the test signing key, whose public half the service is configured with.

use std::sync::OnceLock;
use std::time::Duration;

use catalog::{AppState, Application, CatalogConfig};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use reqwest::StatusCode;
use serde_json::{json, Value};
use shared::auth::Role;
use shared::config::{Profile, Secret};
use shared::events::{topics, Envelope};
use shared::server::ShutdownHandle;
use shared::test_utils::{self, TestDb};
use uuid::Uuid;

use shared::test_utils::brokers;

pub struct TestApp {
    pub http: test_utils::Http,
    pub state: AppState,
    pub topic_prefix: String,
    pub admin: String,
    /// Every transient failure `handle` retried, with its error: a test of lock ordering asserts
    /// there were none, since a retried deadlock would otherwise look like a clean run.
    retried: std::sync::Mutex<Vec<String>>,
    shutdown: ShutdownHandle,
    _db: TestDb,
}

impl std::ops::Deref for TestApp {
    type Target = test_utils::Http;
    fn deref(&self) -> &test_utils::Http {
        &self.http
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.shutdown();
    }
}

/// A user id and a token for it.
#[derive(Clone)]
pub struct Caller {
    pub id: Uuid,
    pub token: String,
}

impl Caller {
    pub fn new(role: Role) -> Self {
        let id = Uuid::now_v7();
        Self {
            id,
            token: test_utils::mint_token(id, role),
        }
    }
    pub fn seller() -> Self {
        Self::new(Role::Seller)
    }
    pub fn buyer() -> Self {
        Self::new(Role::Buyer)
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(customise: impl FnOnce(&mut CatalogConfig)) -> Self {
        test_utils::init_logs();
        static MIGRATOR: OnceLock<sqlx::migrate::Migrator> = OnceLock::new();
        let migrator =
            MIGRATOR.get_or_init(|| shared::db::service_migrator(&catalog::MIGRATOR).unwrap());
        let db = TestDb::create("catalog", migrator)
            .await
            .expect("test database");
        let mut config = CatalogConfig::defaults(Profile::Test);
        config.common.port = 0;
        config.common.database_url = Secret::new(db.url.clone());
        config.common.database_max_connections = 10;
        config.common.redis_url = Secret::new(test_utils::redis_url());
        config.common.redis_prefix = test_utils::unique_redis_prefix();
        config.common.shutdown_grace_secs = 1;
        config.common.jwt_public_key_path = Some(test_utils::public_key_file().to_owned());
        config.common.kafka_brokers = brokers();
        config.common.kafka_topic_partitions = 2;
        config.common.kafka_topic_prefix = format!("t{}.", Uuid::now_v7().simple());
        customise(&mut config);
        let topic_prefix = config.common.kafka_topic_prefix.clone();
        let app = Application::build(config).await.expect("catalog starts");
        let base = format!("http://{}", app.addr());
        let state = app.state.clone();
        let shutdown = app.shutdown_handle();
        tokio::spawn(app.run_until_stopped());
        Self {
            http: test_utils::Http::new(base),
            state,
            topic_prefix,
            admin: test_utils::mint_token(Uuid::now_v7(), Role::Admin),
            retried: std::sync::Mutex::new(Vec::new()),
            shutdown,
            _db: db,
        }
    }

    /// Create a product as `seller`; returns its JSON.
    pub async fn product(&self, seller: &Caller, body: Value) -> Value {
        let resp = self
            .post_auth("/api/v1/products", &seller.token, body)
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "creating a product");
        resp.json().await.unwrap()
    }

    /// Create a SKU; returns its JSON.
    pub async fn sku(
        &self,
        seller: &Caller,
        product: &str,
        code: &str,
        price: &str,
        stock: i64,
    ) -> Value {
        let resp = self
            .post_auth(
                &format!("/api/v1/products/{product}/skus"),
                &seller.token,
                json!({"sku_code": code, "price": price, "currency": "USD", "stock_quantity": stock}),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "creating SKU {code}");
        resp.json().await.unwrap()
    }

    pub async fn activate(&self, seller: &Caller, product: &str) {
        let resp = self
            .patch_auth(
                &format!("/api/v1/products/{product}"),
                &seller.token,
                json!({"status": "active"}),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "activating {product}");
    }

    /// An active product with one SKU of `stock` units at `price`: (product id, sku id).
    pub async fn listed(
        &self,
        seller: &Caller,
        name: &str,
        price: &str,
        stock: i64,
    ) -> (String, String) {
        let p = self.product(seller, json!({"name": name})).await;
        let id = p["id"].as_str().unwrap().to_owned();
        let code = format!("SKU-{}", &Uuid::now_v7().simple().to_string()[20..]);
        let sku = self.sku(seller, &id, &code, price, stock).await;
        self.activate(seller, &id).await;
        (id, sku["id"].as_str().unwrap().to_owned())
    }

    pub async fn admin_category(&self, name: &str, parent: Option<&str>) -> String {
        let resp = self
            .post_auth(
                "/api/v1/categories",
                &self.admin,
                json!({"name": name, "parent_id": parent}),
            )
            .await;
        assert_eq!(
            resp.status(),
            StatusCode::CREATED,
            "creating category {name}"
        );
        let body: Value = resp.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    pub async fn audit(&self) -> Value {
        let resp = self.get_auth("/api/v1/inventory/audit", &self.admin).await;
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }

    pub async fn sku_row(&self, sku: &str) -> (i32, i32, i32) {
        sqlx::query_as(
            "SELECT stock_quantity, reserved_quantity, sold_quantity FROM skus WHERE id = $1::uuid",
        )
        .bind(sku)
        .fetch_one(&self.state.db)
        .await
        .unwrap()
    }

    /// Publish an envelope on this app's `orders.events`, keyed by its order.
    pub async fn publish_order_event(&self, env: &Envelope) {
        let topic = format!("{}{}", self.topic_prefix, topics::ORDERS);
        test_utils::publish(&brokers(), &topic, env).await;
    }

    /// A reader of this app's `catalog.events` from the beginning.
    pub fn catalog_events(&self) -> EventReader {
        let consumer: StreamConsumer = shared::kafka::consumer_config(
            &brokers(),
            &format!("reader-{}", Uuid::now_v7().simple()),
        )
        .create()
        .unwrap();
        consumer
            .subscribe(&[&format!("{}{}", self.topic_prefix, topics::CATALOG)])
            .unwrap();
        EventReader { consumer }
    }
}

pub struct EventReader {
    consumer: StreamConsumer,
}

impl EventReader {
    /// The next event for `order` (others are skipped), waiting at most `within`.
    pub async fn next_for(&self, order: Uuid, within: Duration) -> Option<Envelope> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.consumer.recv())
                .await
                .ok()?;
            let Ok(msg) = msg else { continue };
            let Some(Ok(env)) = msg.payload().map(Envelope::from_json) else {
                continue;
            };
            if env.aggregate_id == order.to_string() {
                return Some(env);
            }
        }
    }

    /// The first event of each of `orders` (others are skipped); panics naming the orders still
    /// unanswered if `within` runs out first.
    pub async fn first_of_each(
        &self,
        orders: &[Uuid],
        within: Duration,
    ) -> std::collections::HashMap<Uuid, Envelope> {
        let deadline = tokio::time::Instant::now() + within;
        let mut seen = std::collections::HashMap::new();
        while seen.len() < orders.len() {
            let Ok(msg) = tokio::time::timeout_at(deadline, self.consumer.recv()).await else {
                let missing: Vec<&Uuid> =
                    orders.iter().filter(|o| !seen.contains_key(*o)).collect();
                panic!(
                    "{} of {} orders got no event within {within:?}: {missing:?}",
                    missing.len(),
                    orders.len()
                );
            };
            let Ok(msg) = msg else { continue };
            let Some(Ok(env)) = msg.payload().map(Envelope::from_json) else {
                continue;
            };
            if let Some(order) = orders.iter().find(|o| env.aggregate_id == o.to_string()) {
                seen.entry(*order).or_insert(env);
            }
        }
        seen
    }
}

pub use shared::test_utils::assert_error;

/// `OrderCreated` for `lines` of (sku id, quantity, unit price in USD).
pub fn order_created(order: Uuid, lines: &[(&str, u32, &str)]) -> Envelope {
    use rust_decimal::Decimal;
    use shared::events::{EventMeta, OrderCreated, OrderLine};
    let items: Vec<OrderLine> = lines
        .iter()
        .map(|(sku, q, price)| OrderLine {
            sku_id: sku.parse().unwrap(),
            product_id: Uuid::nil(),
            seller_id: Uuid::nil(),
            product_name: "test".into(),
            quantity: *q,
            unit_price: Decimal::from_str_exact(price).unwrap(),
            currency: "USD".parse().unwrap(),
        })
        .collect();
    let total = items
        .iter()
        .map(|l| l.unit_price * Decimal::from(l.quantity))
        .sum();
    Envelope::new(
        "order",
        &OrderCreated {
            order_id: order,
            buyer_id: Uuid::now_v7(),
            items,
            total,
            currency: "USD".parse().unwrap(),
            created_at: chrono::Utc::now(),
        },
        &EventMeta::default(),
    )
    .unwrap()
}

fn quantities(lines: &[(&str, u32)]) -> Vec<shared::events::SkuQuantity> {
    lines
        .iter()
        .map(|(s, q)| shared::events::SkuQuantity {
            sku_id: s.parse().unwrap(),
            quantity: *q,
        })
        .collect()
}

pub fn order_confirmed(order: Uuid, lines: &[(&str, u32)]) -> Envelope {
    use shared::events::{EventMeta, OrderConfirmed};
    Envelope::new(
        "order",
        &OrderConfirmed {
            order_id: order,
            buyer_id: Uuid::now_v7(),
            items: quantities(lines),
        },
        &EventMeta::default(),
    )
    .unwrap()
}

pub fn order_cancelled(order: Uuid, lines: &[(&str, u32)], previous: &str) -> Envelope {
    use shared::events::{CancelReason, EventMeta, OrderCancelled};
    Envelope::new(
        "order",
        &OrderCancelled {
            order_id: order,
            buyer_id: Uuid::now_v7(),
            reason: CancelReason::BuyerRequested,
            previous_status: previous.into(),
            items: quantities(lines),
        },
        &EventMeta::default(),
    )
    .unwrap()
}

impl TestApp {
    /// Handle `env` the way the consumer does (inbox row and effects in one transaction),
    /// retrying transient failures (each recorded, see `retried`); returns the outcome (None for
    /// a duplicate or an ignored type).
    pub async fn handle(&self, env: &Envelope) -> Option<catalog::inventory::service::Outcome> {
        use catalog::inventory::handler::InventoryHandler;
        use shared::consumer::HandlerError;
        let handler = InventoryHandler {
            db: self.state.db.clone(),
            cache: self.state.cache.clone(),
        };
        let retry = |why: String| self.retried.lock().unwrap().push(why);
        for _ in 0..50 {
            let mut tx = match self.state.db.begin().await {
                Ok(tx) => tx,
                Err(e) => {
                    retry(format!("begin: {e}"));
                    continue;
                }
            };
            let fresh = sqlx::query(
                "INSERT INTO inbox (event_id, consumer_group, event_type) VALUES ($1, 'test', $2)
                 ON CONFLICT DO NOTHING",
            )
            .bind(env.event_id)
            .bind(&env.event_type)
            .execute(&mut *tx)
            .await;
            let fresh = match fresh {
                Ok(r) => r.rows_affected() == 1,
                Err(e) => {
                    retry(format!("inbox: {e}"));
                    continue;
                }
            };
            if !fresh {
                return None;
            }
            match handler.apply(&mut tx, env).await {
                Ok(outcome) => match tx.commit().await {
                    Ok(()) => {
                        shared::consumer::EventHandler::after_commit(&handler, env).await;
                        return outcome;
                    }
                    Err(e) => retry(format!("commit: {e}")),
                },
                Err(HandlerError::Transient(e)) => {
                    retry(format!("handler: {e:#}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(HandlerError::Permanent(e)) => panic!("permanent failure: {e:#}"),
            }
        }
        panic!("the event kept failing transiently");
    }

    /// The transient failures `handle` has retried so far, with their errors.
    pub fn retried(&self) -> Vec<String> {
        self.retried.lock().unwrap().clone()
    }

    /// Outbox rows of this app, by event type, for `order`.
    pub async fn outbox_types(&self, order: Uuid) -> Vec<String> {
        sqlx::query_scalar("SELECT event_type FROM outbox WHERE aggregate_id = $1 ORDER BY id")
            .bind(order.to_string())
            .fetch_all(&self.state.db)
            .await
            .unwrap()
    }
}

impl TestApp {
    /// The consumer group of the service's real inventory consumer (prefixed like its topics).
    pub fn consumer_group(&self) -> String {
        format!("{}{}", self.topic_prefix, self.state.config.consumer_group)
    }

    /// Wait until the real consumer has handled `event` (its inbox row exists), at most `within`.
    pub async fn wait_handled(&self, event: Uuid, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM inbox WHERE event_id = $1 AND consumer_group = $2",
            )
            .bind(event)
            .bind(self.consumer_group())
            .fetch_one(&self.state.db)
            .await
            .unwrap();
            if n > 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "event {event} not handled by {} within {within:?}",
                self.consumer_group()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The value of counter `name` with (at least) `labels` in `/metrics`, 0 when absent. The
    /// recorder is process-wide: compare a value before and after, never its mere presence.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let text = self.get("/metrics").await.text().await.unwrap();
        metric_value(&text, name, labels)
    }

    /// Whether Redis holds a cached detail of `product`.
    pub async fn cached(&self, product: &str) -> bool {
        let key = self
            .state
            .cache
            .product_key(product.parse().unwrap())
            .expect("the cache is enabled");
        let client = redis::Client::open(test_utils::redis_url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let exists: bool = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        exists
    }
}

/// Sum of the samples of `name` whose labels include every pair of `labels`, in Prometheus text.
pub fn metric_value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let all = labels.iter().all(|(k, v)| {
                label_text
                    .split(',')
                    .any(|pair| pair == format!("{k}=\"{v}\""))
            });
            all.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}
