//! `TestApp`: an order service (own database) and a catalog (own database) on `127.0.0.1:0`, on
//! the test broker. The catalog gets a topic prefix of its own, so it prices orders over HTTP but
//! does not react to them: the tests play catalog's and payment's parts by publishing their events
//! on the order's topics, and read what order writes to its outbox.

use std::sync::OnceLock;
use std::time::Duration;

use order::{Application, OrderConfig};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use shared::auth::Role;
use shared::config::{Profile, Secret};
use shared::events::{topics, Envelope, Event, EventMeta};
use shared::server::ShutdownHandle;
use shared::test_utils::{self, brokers, TestDb};
use sqlx::PgPool;
use uuid::Uuid;

pub struct Service {
    pub base: String,
    shutdown: ShutdownHandle,
    _db: Option<TestDb>,
}

impl Service {
    pub fn stop(&self) {
        self.shutdown.shutdown();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.shutdown.shutdown();
    }
}

pub struct User {
    pub id: Uuid,
    pub token: String,
}

pub fn user(role: Role) -> User {
    let id = Uuid::now_v7();
    User {
        id,
        token: test_utils::mint_token(id, role),
    }
}

pub fn buyer() -> User {
    user(Role::Buyer)
}

async fn migrated(service: &str, migrator: &'static sqlx::migrate::Migrator) -> TestDb {
    static CATALOG: OnceLock<sqlx::migrate::Migrator> = OnceLock::new();
    static ORDERS: OnceLock<sqlx::migrate::Migrator> = OnceLock::new();
    let cell = if service == "catalog" {
        &CATALOG
    } else {
        &ORDERS
    };
    let m = cell.get_or_init(|| shared::db::service_migrator(migrator).unwrap());
    TestDb::create(service, m).await.expect("test database")
}

pub async fn spawn_catalog(topic_prefix: &str) -> Service {
    let db = migrated("catalog", &catalog::MIGRATOR).await;
    let mut config = catalog::CatalogConfig::defaults(Profile::Test);
    config.common.port = 0;
    config.common.database_url = Secret::new(db.url.clone());
    config.common.database_max_connections = 5;
    config.common.redis_url = Secret::new(test_utils::redis_url());
    config.common.redis_prefix = test_utils::unique_redis_prefix();
    config.common.shutdown_grace_secs = 1;
    config.common.jwt_public_key_path = Some(test_utils::public_key_file().to_owned());
    config.common.kafka_brokers = brokers();
    config.common.kafka_topic_partitions = 2;
    config.common.kafka_topic_prefix = topic_prefix.to_owned();
    let app = catalog::Application::build(config)
        .await
        .expect("catalog starts");
    let base = format!("http://{}", app.addr());
    let shutdown = app.shutdown_handle();
    tokio::spawn(app.run_until_stopped());
    Service {
        base,
        shutdown,
        _db: Some(db),
    }
}

/// A cart in front of `catalog_url`, on its own Redis prefix.
pub async fn spawn_cart(catalog_url: &str, topic_prefix: &str) -> Service {
    let mut config = cart::CartConfig::defaults(Profile::Test);
    config.common.port = 0;
    config.common.redis_url = Secret::new(test_utils::redis_url());
    config.common.redis_prefix = test_utils::unique_redis_prefix();
    config.common.shutdown_grace_secs = 1;
    config.common.jwt_public_key_path = Some(test_utils::public_key_file().to_owned());
    config.common.kafka_brokers = brokers();
    config.common.kafka_topic_partitions = 2;
    config.common.kafka_topic_prefix = topic_prefix.to_owned();
    config.catalog_url = catalog_url.to_owned();
    let app = cart::Application::build(config).await.expect("cart starts");
    let base = format!("http://{}", app.addr());
    let shutdown = app.shutdown_handle();
    tokio::spawn(app.run_until_stopped());
    Service {
        base,
        shutdown,
        _db: None,
    }
}

/// A URL where nothing listens (a port bound, then released).
pub fn closed_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

pub struct TestApp {
    /// The order service.
    pub http: test_utils::Http,
    pub state: order::AppState,
    pub catalog: Service,
    pub topic_prefix: String,
    pub db_url: String,
    /// The seller whose products `product` creates.
    pub seller: User,
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

pub fn test_config(db_url: &str, topic_prefix: &str, catalog_url: &str) -> OrderConfig {
    let mut config = OrderConfig::defaults(Profile::Test);
    config.common.port = 0;
    config.common.database_url = Secret::new(db_url.to_owned());
    config.common.database_max_connections = 10;
    config.common.shutdown_grace_secs = 1;
    config.common.jwt_public_key_path = Some(test_utils::public_key_file().to_owned());
    config.common.kafka_brokers = brokers();
    config.common.kafka_topic_partitions = 2;
    config.common.kafka_topic_prefix = topic_prefix.to_owned();
    config.catalog_url = catalog_url.to_owned();
    config.cart_url = closed_url();
    config
}

/// An order service on `config`, running until the returned handle is dropped or stopped.
pub async fn start_order(config: OrderConfig) -> (String, order::AppState, ShutdownHandle) {
    let app = Application::build(config).await.expect("order starts");
    let base = format!("http://{}", app.addr());
    let state = app.state.clone();
    let shutdown = app.shutdown_handle();
    tokio::spawn(app.run_until_stopped());
    (base, state, shutdown)
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(customise: impl FnOnce(&mut OrderConfig)) -> Self {
        test_utils::init_logs();
        let topic_prefix = format!("t{}.", Uuid::now_v7().simple());
        // The catalog on a prefix of its own: it prices, but does not reserve.
        let catalog = spawn_catalog(&format!("c{}.", Uuid::now_v7().simple())).await;
        let db = migrated("orders", &order::MIGRATOR).await;
        let mut config = test_config(&db.url, &topic_prefix, &catalog.base);
        customise(&mut config);
        let (base, state, shutdown) = start_order(config).await;
        Self {
            http: test_utils::Http::new(base),
            state,
            catalog,
            topic_prefix,
            db_url: db.url.clone(),
            seller: user(Role::Seller),
            shutdown,
            _db: db,
        }
    }

    pub fn db(&self) -> &PgPool {
        &self.state.db
    }

    /// An active product of `seller` with one SKU per (price, stock, currency): the SKU ids.
    pub async fn product_of(
        &self,
        seller: &User,
        name: &str,
        skus: &[(&str, i64, &str)],
    ) -> Vec<Uuid> {
        let call = |method: reqwest::Method, path: String, body: Value| {
            let client = self.client.clone();
            let url = format!("{}{path}", self.catalog.base);
            let token = seller.token.clone();
            async move {
                let resp = client
                    .request(method, url)
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert!(
                    resp.status().is_success(),
                    "catalog {path}: {}",
                    resp.status()
                );
                resp.json::<Value>().await.unwrap_or(Value::Null)
            }
        };
        let p = call(
            reqwest::Method::POST,
            "/api/v1/products".into(),
            json!({"name": name}),
        )
        .await;
        let id = p["id"].as_str().unwrap().to_owned();
        let mut out = Vec::new();
        for (price, stock, currency) in skus {
            let code = format!("S-{}", &Uuid::now_v7().simple().to_string()[16..]);
            let s = call(
                reqwest::Method::POST,
                format!("/api/v1/products/{id}/skus"),
                json!({"sku_code": code, "price": price, "currency": currency, "stock_quantity": stock}),
            )
            .await;
            out.push(s["id"].as_str().unwrap().parse().unwrap());
        }
        call(
            reqwest::Method::POST,
            format!("/api/v1/products/{id}/images"),
            json!({"url": "https://img.example/p.png"}),
        )
        .await;
        call(
            reqwest::Method::PATCH,
            format!("/api/v1/products/{id}"),
            json!({"status": "active"}),
        )
        .await;
        out
    }

    /// An active USD product of the test's seller: one SKU per (price, stock).
    pub async fn product(&self, name: &str, skus: &[(&str, i64)]) -> Vec<Uuid> {
        let with_currency: Vec<(&str, i64, &str)> =
            skus.iter().map(|(p, s)| (*p, *s, "USD")).collect();
        self.product_of(&self.seller, name, &with_currency).await
    }

    /// `POST /orders` with `key` and `body`.
    pub async fn place_raw(
        &self,
        token: Option<&str>,
        key: Option<&str>,
        body: &Value,
    ) -> Response {
        let mut req = self.client.post(self.url("/api/v1/orders")).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        req.send().await.unwrap()
    }

    /// Place `lines` (sku, quantity) for `buyer` under a fresh key; the order.
    pub async fn place(&self, buyer: &User, lines: &[(Uuid, u32)]) -> Value {
        let resp = self
            .place_raw(
                Some(&buyer.token),
                Some(&Uuid::now_v7().to_string()),
                &order_body(lines),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        resp.json().await.unwrap()
    }

    pub async fn order(&self, token: &str, id: &str) -> Value {
        let resp = self.get_auth(&format!("/api/v1/orders/{id}"), token).await;
        assert_eq!(resp.status(), StatusCode::OK, "GET order {id}");
        resp.json().await.unwrap()
    }

    /// Publish `event` as `source` would, on this app's topic for it.
    pub async fn publish<E: Event>(&self, event: &E) -> Envelope {
        let env = Envelope::new("test", event, &EventMeta::default()).unwrap();
        self.publish_envelope(&env).await;
        env
    }

    pub async fn publish_envelope(&self, env: &Envelope) {
        let topic = match env.event_type.as_str() {
            t if t.starts_with("Inventory") => topics::CATALOG,
            t if t.starts_with("Payment") => topics::PAYMENTS,
            _ => topics::ORDERS,
        };
        test_utils::publish(&brokers(), &format!("{}{topic}", self.topic_prefix), env).await;
    }

    /// Wait until the order is in `status` (and return it).
    pub async fn wait_status(&self, buyer: &User, id: &str, status: &str) -> Value {
        test_utils::eventually(
            &format!("order {id} to be {status}"),
            Duration::from_secs(30),
            || async {
                let o = self.order(&buyer.token, id).await;
                (o["status"] == status).then_some(o)
            },
        )
        .await
    }

    /// Wait until the order's history has `n` entries (and return the order).
    pub async fn wait_history(&self, buyer: &User, id: &str, n: usize) -> Value {
        test_utils::eventually(
            &format!("order {id} to have {n} history entries"),
            Duration::from_secs(30),
            || async {
                let o = self.order(&buyer.token, id).await;
                (o["status_history"].as_array().unwrap().len() >= n).then_some(o)
            },
        )
        .await
    }

    /// The events order wrote for `order`, oldest first: (type, payload).
    pub async fn outbox(&self, order: &str) -> Vec<(String, Value)> {
        sqlx::query_as::<_, (String, Value)>(
            "SELECT event_type, envelope->'payload' FROM outbox WHERE aggregate_id = $1 ORDER BY id",
        )
        .bind(order)
        .fetch_all(self.db())
        .await
        .unwrap()
    }

    pub async fn outbox_types(&self, order: &str) -> Vec<String> {
        self.outbox(order)
            .await
            .into_iter()
            .map(|(t, _)| t)
            .collect()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(self.db()).await.unwrap()
    }
}

pub fn address() -> Value {
    json!({"name": "Ada Lovelace", "line1": "1 Analytical St", "city": "London",
           "postal_code": "N1 7AA", "country": "GB"})
}

pub fn order_body(lines: &[(Uuid, u32)]) -> Value {
    json!({
        "items": lines.iter().map(|(s, q)| json!({"sku_id": s, "quantity": q})).collect::<Vec<_>>(),
        "shipping_address": address(),
        "payment_method": "tok_visa",
    })
}

pub fn uuid(v: &Value) -> Uuid {
    v.as_str().unwrap().parse().unwrap()
}

pub use shared::test_utils::assert_error;
