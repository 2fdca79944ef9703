//! `Stack`: identity, catalog, cart, order and payment, each built with `Application::build` on
//! `127.0.0.1:0` with a database of its own, on the test broker under one topic prefix, with short
//! deadlines and retry delays. Users are registered and logged in through identity (real tokens).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::config::{Profile, Secret};
use shared::server::ShutdownHandle;
use shared::test_utils::{self, brokers, Http, TestDb};
use sqlx::PgPool;
use uuid::Uuid;

pub const PASSWORD: &str = "E2e-passw0rd!";

/// What a test may change about the stack.
#[derive(Debug, Clone)]
pub struct Options {
    pub payment_timeout_secs: u64,
    pub mock_latency_ms: u64,
    pub mock_timeout_failures: u32,
    pub authorize_max_attempts: u32,
    pub capture_max_attempts: u32,
    /// Catalog's consumer starts only when the test calls `start_reservations` (catalog still
    /// prices placements over HTTP meanwhile): to act on an order while it is `pending`.
    pub hold_reservations: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            payment_timeout_secs: 60,
            mock_latency_ms: 0,
            mock_timeout_failures: 2,
            authorize_max_attempts: 5,
            capture_max_attempts: 5,
            hold_reservations: false,
        }
    }
}

pub struct User {
    pub id: Uuid,
    pub name: String,
    pub token: String,
}

pub struct Stack {
    pub identity: Http,
    pub catalog: Http,
    pub cart: Http,
    pub order: Http,
    pub payment: Http,
    pub catalog_db: PgPool,
    pub order_db: PgPool,
    pub payment_db: PgPool,
    pub identity_db: PgPool,
    pub topic_prefix: String,
    catalog_config: catalog::CatalogConfig,
    handles: std::sync::Mutex<Vec<ShutdownHandle>>,
    mail_dir: std::path::PathBuf,
    _dbs: Vec<TestDb>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Ok(handles) = self.handles.lock() {
            for h in handles.iter() {
                h.shutdown();
            }
        }
        let _ = std::fs::remove_dir_all(&self.mail_dir);
    }
}

async fn db(service: &str, migrator: &'static sqlx::migrate::Migrator, events: bool) -> TestDb {
    let m = if events {
        // Leaked once per test process: the template is keyed by the migrations' checksum.
        Box::leak(Box::new(shared::db::service_migrator(migrator).unwrap()))
    } else {
        migrator
    };
    TestDb::create(service, m).await.expect("test database")
}

fn common(
    c: &mut shared::config::CommonConfig,
    url: Option<&str>,
    redis_prefix: &str,
    topic_prefix: &str,
) {
    c.port = 0;
    if let Some(url) = url {
        c.database_url = Secret::new(url.to_owned());
    }
    c.database_max_connections = 8;
    c.redis_url = Secret::new(test_utils::redis_url());
    c.redis_prefix = redis_prefix.to_owned();
    c.shutdown_grace_secs = 1;
    c.jwt_public_key_path = Some(test_utils::public_key_file().to_owned());
    c.kafka_brokers = brokers();
    c.kafka_topic_partitions = 2;
    c.kafka_topic_prefix = topic_prefix.to_owned();
}

impl Stack {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(o: Options) -> Self {
        test_utils::init_logs();
        let redis_prefix = test_utils::unique_redis_prefix();
        let topic_prefix = format!("e{}.", Uuid::now_v7().simple());
        let mut handles = Vec::new();

        let id_db = db("identity", &identity::MIGRATOR, false).await;
        let mail_dir = std::env::temp_dir()
            .join("koupang-test-mail")
            .join(Uuid::now_v7().simple().to_string());
        let mut ic = identity::IdentityConfig::defaults(Profile::Test);
        common(
            &mut ic.common,
            Some(&id_db.url),
            &redis_prefix,
            &topic_prefix,
        );
        ic.common.jwt_public_key_path = None;
        ic.jwt_private_key_pem = Some(Secret::new(test_utils::test_keys().private_pem()));
        ic.mail_dir = mail_dir.display().to_string();
        ic.mail_requests_per_client = 10_000;
        let identity = identity::Application::build(ic)
            .await
            .expect("identity starts");
        let identity_base = format!("http://{}", identity.addr());
        let identity_db = identity.state.db.clone();
        handles.push(identity.shutdown_handle());
        tokio::spawn(identity.run_until_stopped());

        let cat_db = db("catalog", &catalog::MIGRATOR, true).await;
        let mut cc = catalog::CatalogConfig::defaults(Profile::Test);
        common(
            &mut cc.common,
            Some(&cat_db.url),
            &redis_prefix,
            &topic_prefix,
        );
        let catalog_config = cc.clone();
        // Held: this instance serves HTTP and publishes its outbox, but reserves nothing until a
        // second instance with the consumer starts (`start_reservations`).
        cc.inventory_consumer_enabled = !o.hold_reservations;
        let catalog = catalog::Application::build(cc)
            .await
            .expect("catalog starts");
        let catalog_base = format!("http://{}", catalog.addr());
        let catalog_db = catalog.state.db.clone();
        handles.push(catalog.shutdown_handle());
        tokio::spawn(catalog.run_until_stopped());

        let mut kc = cart::CartConfig::defaults(Profile::Test);
        common(&mut kc.common, None, &redis_prefix, &topic_prefix);
        kc.catalog_url = catalog_base.clone();
        let cart = cart::Application::build(kc).await.expect("cart starts");
        let cart_base = format!("http://{}", cart.addr());
        handles.push(cart.shutdown_handle());
        tokio::spawn(cart.run_until_stopped());

        let ord_db = db("orders", &order::MIGRATOR, true).await;
        let mut oc = order::OrderConfig::defaults(Profile::Test);
        common(
            &mut oc.common,
            Some(&ord_db.url),
            &redis_prefix,
            &topic_prefix,
        );
        oc.catalog_url = catalog_base.clone();
        oc.cart_url = cart_base.clone();
        oc.payment_timeout_secs = o.payment_timeout_secs;
        oc.deadline_sweep_interval_ms = 100;
        let order = order::Application::build(oc).await.expect("order starts");
        let order_base = format!("http://{}", order.addr());
        let order_db = order.state.db.clone();
        handles.push(order.shutdown_handle());
        tokio::spawn(order.run_until_stopped());

        let pay_db = db("payment", &payment::MIGRATOR, true).await;
        let mut pc = payment::PaymentConfig::defaults(Profile::Test);
        common(
            &mut pc.common,
            Some(&pay_db.url),
            &redis_prefix,
            &topic_prefix,
        );
        pc.retry_base_ms = 10;
        pc.retry_max_ms = 40;
        pc.worker_interval_ms = 50;
        pc.mock_latency_ms = o.mock_latency_ms;
        pc.mock_timeout_failures = o.mock_timeout_failures;
        pc.authorize_max_attempts = o.authorize_max_attempts;
        pc.capture_max_attempts = o.capture_max_attempts;
        pc.gateway_timeout_ms = (o.mock_latency_ms + 2000).max(1000);
        pc.claim_lease_secs = pc.gateway_timeout_ms / 1000 + 2;
        let payment = payment::Application::build(pc)
            .await
            .expect("payment starts");
        let payment_base = format!("http://{}", payment.addr());
        let payment_db = payment.state.db.clone();
        handles.push(payment.shutdown_handle());
        tokio::spawn(payment.run_until_stopped());

        Self {
            identity: Http::new(identity_base),
            catalog: Http::new(catalog_base),
            cart: Http::new(cart_base),
            order: Http::new(order_base),
            payment: Http::new(payment_base),
            catalog_db,
            order_db,
            payment_db,
            identity_db,
            topic_prefix,
            catalog_config,
            handles: std::sync::Mutex::new(handles),
            mail_dir,
            _dbs: vec![id_db, cat_db, ord_db, pay_db],
        }
    }

    /// With `hold_reservations`: start catalog's inventory consumer on the stack's topics (a second
    /// catalog process on the same database), so the orders placed meanwhile are reserved now.
    pub async fn start_reservations(&self) {
        let app = catalog::Application::build(self.catalog_config.clone())
            .await
            .expect("the reserving catalog starts");
        self.handles.lock().unwrap().push(app.shutdown_handle());
        tokio::spawn(app.run_until_stopped());
    }

    /// Register `role` user through identity and log in.
    pub async fn user(&self, role: &str) -> User {
        let name = format!("u{}", &Uuid::now_v7().simple().to_string()[16..]);
        let resp = self
            .identity
            .post(
                "/api/v1/users/register",
                json!({"username": name, "email": format!("{name}@example.com"),
                       "password": PASSWORD, "role": role}),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "register {name}");
        let body: Value = resp.json().await.unwrap();
        let id = body["id"].as_str().unwrap().parse().unwrap();
        let token = self.login(&name).await;
        User { id, name, token }
    }

    pub async fn login(&self, name: &str) -> String {
        let resp = self
            .identity
            .post(
                "/api/v1/users/login",
                json!({"username": name, "password": PASSWORD}),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "login {name}");
        let body: Value = resp.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// An admin, made as operators make one (in identity's database, never over the API).
    pub async fn admin(&self) -> User {
        let u = self.user("BUYER").await;
        sqlx::query("UPDATE users SET role = 'ADMIN' WHERE id = $1")
            .bind(u.id)
            .execute(&self.identity_db)
            .await
            .unwrap();
        let token = self.login(&u.name).await;
        User { token, ..u }
    }

    async fn call(
        &self,
        http: &Http,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Value {
        let resp = http
            .send(method.clone(), path, Some(token), body.as_ref())
            .await;
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// An active product of `seller` with one SKU per (price, stock, currency); the SKU ids.
    pub async fn product(&self, seller: &User, name: &str, skus: &[(&str, i64)]) -> Vec<Uuid> {
        let c = &self.catalog;
        let p = self
            .call(
                c,
                Method::POST,
                "/api/v1/products",
                &seller.token,
                Some(json!({"name": name})),
            )
            .await;
        let id = p["id"].as_str().unwrap().to_owned();
        let mut out = Vec::new();
        for (price, stock) in skus {
            let code = format!("E-{}", &Uuid::now_v7().simple().to_string()[16..]);
            let s = self
                .call(
                    c,
                    Method::POST,
                    &format!("/api/v1/products/{id}/skus"),
                    &seller.token,
                    Some(json!({"sku_code": code, "price": price, "currency": "USD", "stock_quantity": stock})),
                )
                .await;
            out.push(s["id"].as_str().unwrap().parse().unwrap());
        }
        self.call(
            c,
            Method::POST,
            &format!("/api/v1/products/{id}/images"),
            &seller.token,
            Some(json!({"url": "https://img.example/e2e.png"})),
        )
        .await;
        self.call(
            c,
            Method::PATCH,
            &format!("/api/v1/products/{id}"),
            &seller.token,
            Some(json!({"status": "active"})),
        )
        .await;
        out
    }

    pub async fn set_price(&self, seller: &User, sku: Uuid, price: &str) {
        self.call(
            &self.catalog,
            Method::PATCH,
            &format!("/api/v1/skus/{sku}"),
            &seller.token,
            Some(json!({"price": price})),
        )
        .await;
    }

    pub async fn set_stock(&self, seller: &User, sku: Uuid, stock: i64) {
        self.call(
            &self.catalog,
            Method::POST,
            &format!("/api/v1/skus/{sku}/stock"),
            &seller.token,
            Some(json!({"set": stock})),
        )
        .await;
    }

    /// (available, reserved, sold) of a SKU, from catalog's own rows.
    pub async fn stock(&self, sku: Uuid) -> (i64, i64, i64) {
        sqlx::query_as(
            "SELECT (stock_quantity - reserved_quantity)::bigint, reserved_quantity::bigint,
                    sold_quantity::bigint FROM skus WHERE id = $1",
        )
        .bind(sku)
        .fetch_one(&self.catalog_db)
        .await
        .unwrap()
    }

    /// Wait until the SKU's (available, reserved, sold) is `want`: catalog commits and releases
    /// after the order's confirmation or cancellation, asynchronously.
    pub async fn wait_stock(&self, sku: Uuid, want: (i64, i64, i64)) {
        test_utils::eventually(
            &format!("stock of {sku} to be {want:?}"),
            Duration::from_secs(30),
            || async { (self.stock(sku).await == want).then_some(()) },
        )
        .await;
    }

    pub async fn add_to_cart(&self, buyer: &User, sku: Uuid, quantity: u32) {
        self.call(
            &self.cart,
            Method::POST,
            "/api/v1/cart/items",
            &buyer.token,
            Some(json!({"sku_id": sku, "quantity": quantity})),
        )
        .await;
    }

    /// `POST /orders` with `key` and `body`: (status, body).
    pub async fn place_raw(&self, buyer: &User, key: &str, body: &Value) -> (StatusCode, Value) {
        let resp = self
            .order
            .client
            .post(self.order.url("/api/v1/orders"))
            .bearer_auth(&buyer.token)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Place `lines` paid with `method`; the order id.
    pub async fn place(&self, buyer: &User, lines: &[(Uuid, u32)], method: &str) -> Uuid {
        let (status, body) = self
            .place_raw(
                buyer,
                &Uuid::now_v7().to_string(),
                &order_body(lines, method),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body["id"].as_str().unwrap().parse().unwrap()
    }

    pub async fn order_of(&self, token: &str, id: Uuid) -> Value {
        self.call(
            &self.order,
            Method::GET,
            &format!("/api/v1/orders/{id}"),
            token,
            None,
        )
        .await
    }

    /// Wait until the order settles (confirmed with its payment captured, or cancelled with its
    /// money released) and return it.
    pub async fn settled(&self, buyer: &User, id: Uuid) -> Value {
        test_utils::eventually(
            &format!("order {id} to settle"),
            Duration::from_secs(45),
            || async {
                let o = self.order_of(&buyer.token, id).await;
                let done = match (o["status"].as_str(), o["payment_status"].as_str()) {
                    (Some("confirmed"), Some("captured")) => true,
                    (
                        Some("cancelled"),
                        Some(mirrored @ ("none" | "failed" | "voided" | "refunded")),
                    ) => {
                        // Settled on payment's side, and the order has heard the last of it.
                        self.payment_settled(id).await
                            && self.payment_status(id).await.as_deref().unwrap_or("none")
                                == mirrored
                    }
                    _ => false,
                };
                done.then_some(o)
            },
        )
        .await
    }

    /// What the auditor reads of this stack.
    pub fn audit_target(&self) -> auditor::Target {
        auditor::Target {
            catalog_db: self.catalog_db.clone(),
            order_db: self.order_db.clone(),
            payment_db: self.payment_db.clone(),
            brokers: test_utils::brokers(),
            topic_prefix: self.topic_prefix.clone(),
        }
    }

    /// The status of `order`'s payment in payment's own database (none: no payment).
    pub async fn payment_status(&self, order: Uuid) -> Option<String> {
        sqlx::query_scalar("SELECT status::text FROM payments WHERE order_id = $1")
            .bind(order)
            .fetch_optional(&self.payment_db)
            .await
            .unwrap()
    }

    /// The payment of `order` owes the gateway nothing (or there is none).
    pub async fn payment_settled(&self, order: Uuid) -> bool {
        let pending: Option<Option<String>> =
            sqlx::query_scalar("SELECT pending_op FROM payments WHERE order_id = $1")
                .bind(order)
                .fetch_optional(&self.payment_db)
                .await
                .unwrap();
        !matches!(pending, Some(Some(_)))
    }

    pub async fn wait_status(&self, buyer: &User, id: Uuid, status: &str) -> Value {
        test_utils::eventually(
            &format!("order {id} to be {status}"),
            Duration::from_secs(45),
            || async {
                let o = self.order_of(&buyer.token, id).await;
                (o["status"] == status).then_some(o)
            },
        )
        .await
    }

    pub async fn payment_of(&self, token: &str, order: Uuid) -> Value {
        self.call(
            &self.payment,
            Method::GET,
            &format!("/api/v1/payments/{order}"),
            token,
            None,
        )
        .await
    }

    pub async fn get(&self, http: &Http, path: &str, token: &str) -> Value {
        self.call(http, Method::GET, path, token, None).await
    }

    pub async fn post(&self, http: &Http, path: &str, token: &str, body: Value) -> Value {
        self.call(http, Method::POST, path, token, Some(body)).await
    }
}

pub fn order_body(lines: &[(Uuid, u32)], method: &str) -> Value {
    json!({
        "items": lines.iter().map(|(s, q)| json!({"sku_id": s, "quantity": q})).collect::<Vec<_>>(),
        "shipping_address": {"name": "Eve Buyer", "line1": "2 Low Road", "city": "Busan",
                             "postal_code": "48058", "country": "KR"},
        "payment_method": method,
    })
}
