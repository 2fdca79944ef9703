//! `TestApp`: a catalog (own database) and a cart (own Redis prefix) on `127.0.0.1:0`, sharing a
//! topic prefix on the test broker. Products are made through the catalog's API as a seller.

use std::sync::OnceLock;

use cart::{Application, CartConfig};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use shared::auth::Role;
use shared::config::{Profile, Secret};
use shared::events::{topics, Envelope};
use shared::server::ShutdownHandle;
use shared::test_utils::{self, TestDb};
use uuid::Uuid;

use shared::test_utils::brokers;

pub struct Catalog {
    pub base: String,
    shutdown: ShutdownHandle,
    _db: TestDb,
}

impl Drop for Catalog {
    fn drop(&mut self) {
        self.shutdown.shutdown();
    }
}

pub struct TestApp {
    /// The cart.
    pub http: test_utils::Http,
    pub state: cart::AppState,
    pub catalog: Catalog,
    pub topic_prefix: String,
    pub seller: String,
    shutdown: ShutdownHandle,
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

pub struct Buyer {
    pub id: Uuid,
    pub token: String,
}

pub fn buyer() -> Buyer {
    let id = Uuid::now_v7();
    Buyer {
        id,
        token: test_utils::mint_token(id, Role::Buyer),
    }
}

async fn spawn_catalog(topic_prefix: &str) -> Catalog {
    static MIGRATOR: OnceLock<sqlx::migrate::Migrator> = OnceLock::new();
    let migrator =
        MIGRATOR.get_or_init(|| shared::db::service_migrator(&catalog::MIGRATOR).unwrap());
    let db = TestDb::create("catalog", migrator)
        .await
        .expect("catalog database");
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
    Catalog {
        base,
        shutdown,
        _db: db,
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(customise: impl FnOnce(&mut CartConfig)) -> Self {
        test_utils::init_logs();
        let topic_prefix = format!("t{}.", Uuid::now_v7().simple());
        let catalog = spawn_catalog(&topic_prefix).await;
        let mut config = CartConfig::defaults(Profile::Test);
        config.common.port = 0;
        config.common.redis_url = Secret::new(test_utils::redis_url());
        config.common.redis_prefix = test_utils::unique_redis_prefix();
        config.common.shutdown_grace_secs = 1;
        config.common.jwt_public_key_path = Some(test_utils::public_key_file().to_owned());
        config.common.kafka_brokers = brokers();
        config.common.kafka_topic_partitions = 2;
        config.common.kafka_topic_prefix = topic_prefix.clone();
        config.catalog_url = catalog.base.clone();
        customise(&mut config);
        let app = Application::build(config).await.expect("cart starts");
        let base = format!("http://{}", app.addr());
        let state = app.state.clone();
        let shutdown = app.shutdown_handle();
        tokio::spawn(app.run_until_stopped());
        Self {
            http: test_utils::Http::new(base),
            state,
            catalog,
            topic_prefix,
            seller: test_utils::mint_token(Uuid::now_v7(), Role::Seller),
            shutdown,
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Response {
        self.http
            .send(method, path, Some(token), body.as_ref())
            .await
    }

    pub async fn get_cart(&self, b: &Buyer) -> Value {
        let resp = self
            .send(reqwest::Method::GET, "/api/v1/cart", &b.token, None)
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }

    pub async fn add(&self, b: &Buyer, sku: &str, quantity: i64) -> Response {
        self.send(
            reqwest::Method::POST,
            "/api/v1/cart/items",
            &b.token,
            Some(json!({"sku_id": sku, "quantity": quantity})),
        )
        .await
    }

    pub async fn add_ok(&self, b: &Buyer, sku: &str, quantity: i64) -> Value {
        let resp = self.add(b, sku, quantity).await;
        assert_eq!(resp.status(), StatusCode::OK, "adding {sku}");
        resp.json().await.unwrap()
    }

    /// A call to the catalog as the test's seller.
    pub async fn catalog_call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let resp = self
            .client
            .request(method, format!("{}{path}", self.catalog.base))
            .bearer_auth(&self.seller)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_success(),
            "catalog {path}: {}",
            resp.status()
        );
        resp.json().await.unwrap_or(Value::Null)
    }

    /// An active product named `name` with one SKU per (price, stock): the SKU ids.
    pub async fn product(&self, name: &str, skus: &[(&str, i64)]) -> Vec<String> {
        let p = self
            .catalog_call(
                reqwest::Method::POST,
                "/api/v1/products",
                json!({"name": name}),
            )
            .await;
        let id = p["id"].as_str().unwrap().to_owned();
        let mut out = Vec::new();
        for (price, stock) in skus {
            let code = format!("S-{}", &Uuid::now_v7().simple().to_string()[16..]);
            let s = self
                .catalog_call(
                    reqwest::Method::POST,
                    &format!("/api/v1/products/{id}/skus"),
                    json!({"sku_code": code, "price": price, "currency": "USD", "stock_quantity": stock}),
                )
                .await;
            out.push(s["id"].as_str().unwrap().to_owned());
        }
        self.catalog_call(
            reqwest::Method::POST,
            &format!("/api/v1/products/{id}/images"),
            json!({"url": "https://img.example/p.png"}),
        )
        .await;
        self.catalog_call(
            reqwest::Method::PATCH,
            &format!("/api/v1/products/{id}"),
            json!({"status": "active"}),
        )
        .await;
        out
    }

    /// Publish an envelope on this app's `orders.events`.
    pub async fn publish_order_event(&self, env: &Envelope) {
        let topic = format!("{}{}", self.topic_prefix, topics::ORDERS);
        test_utils::publish(&brokers(), &topic, env).await;
    }

    pub fn redis(&self) -> redis::aio::ConnectionManager {
        // The store's own connection: same server, same prefix.
        self.state.store.connection()
    }

    pub fn keys(&self, b: &Buyer) -> [String; 3] {
        cart::cart::store::CartStore::keys(self.state.store.prefix(), b.id)
    }
}

pub use shared::test_utils::assert_error;
