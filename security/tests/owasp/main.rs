//! OWASP API Security Top-10 (2023) probes against running services (issue 12, "And keep it
//! tested"). Each test starts identity, catalog, cart, order and payment in this process
//! (`Application::build` on `127.0.0.1:0`, a database per service, one Redis prefix and one topic
//! prefix on the test broker for the stack, as a deployment shares them), with identity signing
//! with the test key whose public half catalog, cart, order and payment verify. Its users are real:
//! a buyer, a second buyer, a seller, a second seller (registered through identity) and an admin
//! (made as operators make one, in the database). Their objects: an active product of the seller
//! with a SKU and an image, a draft product, a category, a brand linked to it, an order of the
//! buyer for the seller's SKU (placed through order with `tok_visa`) and its payment, and a cart
//! line of the buyer. The order is waited on until the whole saga has settled — catalog reserved
//! and committed its stock, payment authorized and captured it (mock gateway, fast retries), cart
//! dropped the bought line, order is `confirmed` with its payment `captured` — so the probes start
//! from a state nothing else moves; the cart line is put back after that.
//!
//! - API1 (BOLA): every id-taking endpoint called by the second user of each role → the exact
//!   refusal, and a snapshot of every object taken before equals the one taken after; the second
//!   buyer's and second seller's order lists do not show the first's order, and the first buyer's
//!   `Idempotency-Key` gets the second buyer an order of their own. A payment is its buyer's and
//!   admins' only: the second buyer and both sellers are told it does not exist.
//! - API2 (broken authentication): expired, wrong audience, wrong issuer, `alg: none`, HS256 keyed
//!   with the public key, another Ed25519 key, a revoked token → 401 with the one error body, on a
//!   route of each service (payment's: the buyer's payment).
//! - API3 (mass assignment, property exposure): every writable shape with privileged fields added
//!   is refused or the field ignored (the stored value is checked: an order is priced by the
//!   catalog and belongs to its caller, whatever the body says); no public body holds a secret or
//!   an inventory counter, a seller's view of an order holds neither the order total nor the
//!   buyer's payment method or id, a payment (the buyer's view, the admin's ledger views) holds no
//!   card data beyond the `tok_...` token, and no error body internal text.
//! - API4 (resource consumption): oversized bodies, huge `limit`, deep JSON, too many ids or order
//!   lines → 4xx.
//! - API5 (function-level authorization): every admin route (identity's, catalog's, payment's
//!   ledger) as buyer and seller, every seller route (a seller's balance too) as buyer, every
//!   buyer-only route (placing an order) as seller and admin → 403.
//!
//! Probes are rows of `Probe` (service, method, path template, body, caller, status, code): a new
//! endpoint is one row per table it belongs to. Each test prints `owasp: N probes, all passed` and
//! reports every failed probe at once (request and answer) rather than stopping at the first.
//! Every `POST` to order carries a fresh `Idempotency-Key`, as a client's would, so a refusal is
//! never the missing header's doing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{json, Value};
use shared::auth::{Claims, Ed25519KeyPair, Role};
use shared::config::{Profile, Secret};
use shared::server::ShutdownHandle;
use shared::test_utils::{self, brokers, Http, TestDb};
use uuid::Uuid;

const PASSWORD: &str = "Corr3ct-horse!";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Svc {
    Identity,
    Catalog,
    Cart,
    Order,
    Payment,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Anon,
    Buyer,
    Buyer2,
    Seller,
    Seller2,
    Admin,
}

struct User {
    id: Uuid,
    token: String,
}

/// One request and the answer it must get.
struct Probe {
    svc: Svc,
    method: Method,
    /// With `{product}`, `{draft}`, `{sku}`, `{image}`, `{category}`, `{category2}`, `{brand}`,
    /// `{order}`, `{buyer}`, `{seller}` and `{admin}` replaced by the fixtures' ids (in the body
    /// too).
    path: &'static str,
    body: Option<Value>,
    who: Who,
    status: u16,
    /// The error code, when the answer is an error.
    code: Option<&'static str>,
    /// What the probe is about, in its failure message.
    note: &'static str,
}

fn probe(
    svc: Svc,
    method: &str,
    path: &'static str,
    body: Option<Value>,
    who: Who,
    status: u16,
    code: Option<&'static str>,
) -> Probe {
    Probe {
        svc,
        method: Method::from_bytes(method.as_bytes()).unwrap(),
        path,
        body,
        who,
        status,
        code,
        note: "",
    }
}

/// Counts probes and collects the failed ones.
struct Tally {
    name: &'static str,
    probes: usize,
    failures: Vec<String>,
}

impl Tally {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            probes: 0,
            failures: Vec::new(),
        }
    }

    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        self.probes += 1;
        if !ok {
            self.failures.push(what());
        }
    }

    fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{}: {} of {} probes failed:\n{}",
            self.name,
            self.failures.len(),
            self.probes,
            self.failures.join("\n")
        );
        println!("{}", self.name);
        println!("owasp: {} probes, all passed", self.probes);
    }
}

/// An answer, read whole.
struct Answer {
    status: u16,
    request_id: Option<String>,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// Whether this is the one error body with `code` (and the response's request id).
    fn is_error(&self, code: &str) -> bool {
        let body = self.json();
        body["error"]["code"] == code
            && body["error"]["message"].is_string()
            && body["error"]["request_id"].as_str().map(str::to_owned) == self.request_id
    }
}

struct Stack {
    identity: Http,
    catalog: Http,
    cart: Http,
    order: Http,
    payment: Http,
    identity_state: identity::AppState,
    handles: Vec<ShutdownHandle>,
    mail_dir: PathBuf,
    _dbs: Vec<TestDb>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        for h in &self.handles {
            h.shutdown();
        }
        let _ = std::fs::remove_dir_all(&self.mail_dir);
    }
}

impl Stack {
    async fn spawn() -> Self {
        test_utils::init_logs();
        // One Redis prefix for the stack: revocation marks are read under the prefix identity
        // writes them (docs/adr/010); each service's own keys are namespaced below it.
        let redis_prefix = test_utils::unique_redis_prefix();
        let topic_prefix = format!("t{}.", Uuid::now_v7().simple());

        let id_db = TestDb::create("identity", &identity::MIGRATOR)
            .await
            .expect("identity database");
        let mail_dir = std::env::temp_dir()
            .join("koupang-test-mail")
            .join(Uuid::now_v7().simple().to_string());
        let mut ic = identity::IdentityConfig::defaults(Profile::Test);
        ic.common.port = 0;
        ic.common.database_url = Secret::new(id_db.url.clone());
        ic.common.database_max_connections = 5;
        ic.common.redis_url = Secret::new(test_utils::redis_url());
        ic.common.redis_prefix = redis_prefix.clone();
        ic.common.shutdown_grace_secs = 1;
        ic.jwt_private_key_pem = Some(Secret::new(test_utils::test_keys().private_pem()));
        ic.mail_dir = mail_dir.display().to_string();
        let identity = identity::Application::build(ic)
            .await
            .expect("identity starts");
        let identity_base = format!("http://{}", identity.addr());
        let identity_state = identity.state.clone();
        let mut handles = vec![identity.shutdown_handle()];
        tokio::spawn(identity.run_until_stopped());

        let migrator = shared::db::service_migrator(&catalog::MIGRATOR).unwrap();
        let cat_db = TestDb::create("catalog", &migrator)
            .await
            .expect("catalog database");
        let mut cc = catalog::CatalogConfig::defaults(Profile::Test);
        cc.common.port = 0;
        cc.common.database_url = Secret::new(cat_db.url.clone());
        cc.common.database_max_connections = 5;
        cc.common.redis_url = Secret::new(test_utils::redis_url());
        cc.common.redis_prefix = redis_prefix.clone();
        cc.common.shutdown_grace_secs = 1;
        cc.common.jwt_public_key_path = Some(test_utils::public_key_file().to_owned());
        cc.common.kafka_brokers = brokers();
        cc.common.kafka_topic_partitions = 2;
        cc.common.kafka_topic_prefix = topic_prefix.clone();
        let catalog = catalog::Application::build(cc)
            .await
            .expect("catalog starts");
        let catalog_base = format!("http://{}", catalog.addr());
        handles.push(catalog.shutdown_handle());
        tokio::spawn(catalog.run_until_stopped());

        let mut kc = cart::CartConfig::defaults(Profile::Test);
        kc.common.port = 0;
        kc.common.redis_url = Secret::new(test_utils::redis_url());
        kc.common.redis_prefix = redis_prefix.clone();
        kc.common.shutdown_grace_secs = 1;
        kc.common.jwt_public_key_path = Some(test_utils::public_key_file().to_owned());
        kc.common.kafka_brokers = brokers();
        kc.common.kafka_topic_partitions = 2;
        kc.common.kafka_topic_prefix = topic_prefix.clone();
        kc.catalog_url = catalog_base.clone();
        let cart = cart::Application::build(kc).await.expect("cart starts");
        let cart_base = format!("http://{}", cart.addr());
        handles.push(cart.shutdown_handle());
        tokio::spawn(cart.run_until_stopped());

        // Order prices at the stack's catalog, reads the stack's cart, and takes part in the
        // saga with the catalog and payment on the stack's topics.
        let migrator = shared::db::service_migrator(&order::MIGRATOR).unwrap();
        let order_db = TestDb::create("orders", &migrator)
            .await
            .expect("order database");
        let mut oc = order::OrderConfig::defaults(Profile::Test);
        oc.common.port = 0;
        oc.common.database_url = Secret::new(order_db.url.clone());
        oc.common.database_max_connections = 5;
        oc.common.redis_url = Secret::new(test_utils::redis_url());
        oc.common.redis_prefix = redis_prefix.clone();
        oc.common.shutdown_grace_secs = 1;
        oc.common.jwt_public_key_path = Some(test_utils::public_key_file().to_owned());
        oc.common.kafka_brokers = brokers();
        oc.common.kafka_topic_partitions = 2;
        oc.common.kafka_topic_prefix = topic_prefix.clone();
        oc.catalog_url = catalog_base.clone();
        oc.cart_url = cart_base.clone();
        let order = order::Application::build(oc).await.expect("order starts");
        let order_base = format!("http://{}", order.addr());
        handles.push(order.shutdown_handle());
        tokio::spawn(order.run_until_stopped());

        // Payment authorizes what order requests and captures what it confirms, on the stack's
        // topics, with the mock gateway and retries fast enough for a test.
        let migrator = shared::db::service_migrator(&payment::MIGRATOR).unwrap();
        let pay_db = TestDb::create("payment", &migrator)
            .await
            .expect("payment database");
        let mut pc = payment::PaymentConfig::defaults(Profile::Test);
        pc.common.port = 0;
        pc.common.database_url = Secret::new(pay_db.url.clone());
        pc.common.database_max_connections = 5;
        pc.common.redis_url = Secret::new(test_utils::redis_url());
        pc.common.redis_prefix = redis_prefix;
        pc.common.shutdown_grace_secs = 1;
        pc.common.jwt_public_key_path = Some(test_utils::public_key_file().to_owned());
        pc.common.kafka_brokers = brokers();
        pc.common.kafka_topic_partitions = 2;
        pc.common.kafka_topic_prefix = topic_prefix;
        pc.retry_base_ms = 10;
        pc.retry_max_ms = 40;
        pc.worker_interval_ms = 50;
        pc.gateway_timeout_ms = 1000;
        pc.claim_lease_secs = 2;
        let payment = payment::Application::build(pc)
            .await
            .expect("payment starts");
        let payment_base = format!("http://{}", payment.addr());
        handles.push(payment.shutdown_handle());
        tokio::spawn(payment.run_until_stopped());

        Self {
            identity: Http::new(identity_base),
            catalog: Http::new(catalog_base),
            cart: Http::new(cart_base),
            order: Http::new(order_base),
            payment: Http::new(payment_base),
            identity_state,
            handles,
            mail_dir,
            _dbs: vec![id_db, cat_db, order_db, pay_db],
        }
    }

    fn http(&self, svc: Svc) -> &Http {
        match svc {
            Svc::Identity => &self.identity,
            Svc::Catalog => &self.catalog,
            Svc::Cart => &self.cart,
            Svc::Order => &self.order,
            Svc::Payment => &self.payment,
        }
    }

    /// A request with the caller's token; a `POST` to order also gets an `Idempotency-Key`
    /// (`key`, else a fresh one).
    fn request(
        &self,
        svc: Svc,
        method: Method,
        path: &str,
        token: Option<&str>,
        key: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let http = self.http(svc);
        let keyed = svc == Svc::Order && method == Method::POST;
        let mut req = http.client.request(method, http.url(path));
        if keyed {
            let key = key.map_or_else(|| Uuid::now_v7().to_string(), str::to_owned);
            req = req.header("idempotency-key", key);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req
    }

    /// Send and read the whole answer.
    async fn call(
        &self,
        svc: Svc,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        self.call_keyed(svc, method, path, token, body, None).await
    }

    /// `call` with this `Idempotency-Key` on a `POST` to order.
    async fn call_keyed(
        &self,
        svc: Svc,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Answer {
        let mut req = self.request(svc, method, path, token, key);
        if let Some(b) = body {
            req = req.json(b);
        }
        Self::read(req.send().await.expect("request")).await
    }

    /// Send a raw body (`Content-Type: application/json`).
    async fn call_raw(
        &self,
        svc: Svc,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: String,
    ) -> Answer {
        let req = self
            .request(svc, method, path, token, None)
            .header("content-type", "application/json")
            .body(body);
        Self::read(req.send().await.expect("request")).await
    }

    async fn read(resp: reqwest::Response) -> Answer {
        let status = resp.status().as_u16();
        let request_id = resp
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = resp.text().await.unwrap_or_default();
        Answer {
            status,
            request_id,
            text,
        }
    }

    /// `call` that must answer `status`; returns the JSON body.
    async fn ok(
        &self,
        svc: Svc,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let a = self.call(svc, m, path, token, body.as_ref()).await;
        assert_eq!(a.status, status, "{method} {path}: {}", a.text);
        a.json()
    }

    /// A registered and logged-in user.
    async fn user(&self, name: &str, role: &str) -> User {
        let body = self
            .ok(
                Svc::Identity,
                "POST",
                "/api/v1/users/register",
                None,
                Some(
                    json!({"username": name, "email": format!("{name}@example.com"),
                            "password": PASSWORD, "role": role}),
                ),
                201,
            )
            .await;
        let id: Uuid = body["id"].as_str().unwrap().parse().unwrap();
        if role == "ADMIN" {
            unreachable!("admins are made by `admin`");
        }
        User {
            id,
            token: self.login(name).await,
        }
    }

    async fn login(&self, name: &str) -> String {
        let body = self
            .ok(
                Svc::Identity,
                "POST",
                "/api/v1/users/login",
                None,
                Some(json!({"username": name, "password": PASSWORD})),
                200,
            )
            .await;
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// An admin made the way operators make one (never through the API), logged in.
    async fn admin(&self, name: &str) -> User {
        let user = self.user(name, "BUYER").await;
        sqlx::query("UPDATE users SET role = 'ADMIN' WHERE id = $1")
            .bind(user.id)
            .execute(&self.identity_state.db)
            .await
            .unwrap();
        User {
            id: user.id,
            token: self.login(name).await,
        }
    }
}

/// The stack, its users and their objects.
struct World {
    s: Stack,
    buyer: User,
    buyer2: User,
    seller: User,
    seller2: User,
    admin: User,
    product: String,
    draft: String,
    sku: String,
    image: String,
    category: String,
    category2: String,
    brand: String,
    /// The buyer's order for one unit of `sku`, settled: `confirmed`, its stock committed by the
    /// catalog, its payment (`tok_visa`) captured.
    order: Uuid,
    /// The `Idempotency-Key` it was placed with.
    order_key: String,
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// A valid order placement for one unit of `sku` (a string id or the `{sku}` template).
fn order_body(sku: &str) -> Value {
    json!({
        "items": [{"sku_id": sku, "quantity": 1}],
        "shipping_address": {"name": "Ada Buyer", "line1": "1 High Street", "city": "London",
                             "postal_code": "N1 9GU", "country": "GB"},
        "payment_method": "tok_visa",
    })
}

impl World {
    async fn build() -> Self {
        let s = Stack::spawn().await;
        let tag = &Uuid::now_v7().simple().to_string()[20..];
        let buyer = s.user(&format!("buyer{tag}"), "BUYER").await;
        let buyer2 = s.user(&format!("buyertwo{tag}"), "BUYER").await;
        let seller = s.user(&format!("seller{tag}"), "SELLER").await;
        let seller2 = s.user(&format!("sellertwo{tag}"), "SELLER").await;
        let admin = s.admin(&format!("admin{tag}")).await;
        let st = Some(seller.token.as_str());
        let at = Some(admin.token.as_str());
        let c = Svc::Catalog;

        let category = id_of(
            &s.ok(
                c,
                "POST",
                "/api/v1/categories",
                at,
                Some(json!({"name": "Lights"})),
                201,
            )
            .await,
        );
        let category2 = id_of(
            &s.ok(
                c,
                "POST",
                "/api/v1/categories",
                at,
                Some(json!({"name": "Tables"})),
                201,
            )
            .await,
        );
        let brand = id_of(
            &s.ok(
                c,
                "POST",
                "/api/v1/brands",
                at,
                Some(json!({"name": "Acme"})),
                201,
            )
            .await,
        );
        s.ok(
            c,
            "PUT",
            &format!("/api/v1/brands/{brand}/categories/{category}"),
            at,
            None,
            204,
        )
        .await;

        let product = id_of(
            &s.ok(
                c,
                "POST",
                "/api/v1/products",
                st,
                Some(json!({"name": "Lamp", "category_id": category, "brand_id": brand})),
                201,
            )
            .await,
        );
        let sku = id_of(
            &s.ok(
                c,
                "POST",
                &format!("/api/v1/products/{product}/skus"),
                st,
                Some(json!({"sku_code": format!("L-{tag}"), "price": "19.99",
                            "currency": "USD", "stock_quantity": 10})),
                201,
            )
            .await,
        );
        let image = id_of(
            &s.ok(
                c,
                "POST",
                &format!("/api/v1/products/{product}/images"),
                st,
                Some(json!({"url": "https://img.example/lamp.png"})),
                201,
            )
            .await,
        );
        s.ok(
            c,
            "PATCH",
            &format!("/api/v1/products/{product}"),
            st,
            Some(json!({"status": "active"})),
            200,
        )
        .await;
        let draft = id_of(
            &s.ok(
                c,
                "POST",
                "/api/v1/products",
                st,
                Some(json!({"name": "Draft"})),
                201,
            )
            .await,
        );
        s.ok(
            Svc::Cart,
            "POST",
            "/api/v1/cart/items",
            Some(&buyer.token),
            Some(json!({"sku_id": sku, "quantity": 2})),
            200,
        )
        .await;
        let order_key = format!("fixture-{tag}");
        let placed = s
            .call_keyed(
                Svc::Order,
                Method::POST,
                "/api/v1/orders",
                Some(&buyer.token),
                Some(&order_body(&sku)),
                Some(&order_key),
            )
            .await;
        assert_eq!(
            placed.status, 202,
            "placing the fixture order: {}",
            placed.text
        );
        let order: Uuid = id_of(&placed.json()).parse().unwrap();
        // The saga (catalog reserves, payment authorizes, order confirms, catalog commits the
        // stock, cart drops the bought line, payment captures, order records the capture) settles
        // before any snapshot is taken, so a snapshot difference is a probe's doing, not the
        // saga's. A cancelled order or a failed payment ends the wait at once (and fails below).
        let order_path = format!("/api/v1/orders/{order}");
        let payment_path = format!("/api/v1/payments/{order}");
        let reservation_path = format!("/api/v1/inventory/reservations/{order}");
        let settled = test_utils::eventually(
            "the fixture order's saga to settle (confirmed, stock committed, payment captured)",
            Duration::from_secs(30),
            || async {
                let o = s
                    .call(
                        Svc::Order,
                        Method::GET,
                        &order_path,
                        Some(&buyer.token),
                        None,
                    )
                    .await;
                // 404 PAYMENT_NOT_FOUND until payment has consumed `PaymentRequested`.
                let p = s
                    .call(
                        Svc::Payment,
                        Method::GET,
                        &payment_path,
                        Some(&buyer.token),
                        None,
                    )
                    .await;
                let r = s
                    .call(
                        Svc::Catalog,
                        Method::GET,
                        &reservation_path,
                        Some(&admin.token),
                        None,
                    )
                    .await;
                let c = s
                    .call(
                        Svc::Cart,
                        Method::GET,
                        "/api/v1/cart",
                        Some(&buyer.token),
                        None,
                    )
                    .await;
                let (o, p, r, c) = (o.json(), p.json(), r.json(), c.json());
                let done = o["status"] == "confirmed"
                    && o["payment_status"] == "captured"
                    && p["status"] == "captured"
                    && r["items"][0]["status"] == "committed"
                    && c["items"].as_array().is_some_and(Vec::is_empty);
                let gone = o["status"] == "cancelled"
                    || matches!(
                        p["status"].as_str(),
                        Some("failed" | "voided" | "capture_failed" | "refunded")
                    );
                (done || gone).then(|| {
                    (
                        done,
                        json!({"order": o, "payment": p, "reservations": r, "cart": c}),
                    )
                })
            },
        )
        .await;
        assert!(
            settled.0,
            "the fixture order's saga did not settle as confirmed and captured: {}",
            settled.1
        );
        // The confirmed order took the buyer's cart line (contract §5): the buyer fills the cart
        // again, so the probes have a line of theirs to aim at.
        s.ok(
            Svc::Cart,
            "POST",
            "/api/v1/cart/items",
            Some(&buyer.token),
            Some(json!({"sku_id": sku, "quantity": 2})),
            200,
        )
        .await;
        Self {
            s,
            buyer,
            buyer2,
            seller,
            seller2,
            admin,
            product,
            draft,
            sku,
            image,
            category,
            category2,
            brand,
            order,
            order_key,
        }
    }

    fn user(&self, who: Who) -> Option<&User> {
        match who {
            Who::Anon => None,
            Who::Buyer => Some(&self.buyer),
            Who::Buyer2 => Some(&self.buyer2),
            Who::Seller => Some(&self.seller),
            Who::Seller2 => Some(&self.seller2),
            Who::Admin => Some(&self.admin),
        }
    }

    fn token(&self, who: Who) -> Option<&str> {
        self.user(who).map(|u| u.token.as_str())
    }

    fn path(&self, template: &str) -> String {
        template
            .replace("{product}", &self.product)
            .replace("{draft}", &self.draft)
            .replace("{sku}", &self.sku)
            .replace("{image}", &self.image)
            .replace("{category2}", &self.category2)
            .replace("{category}", &self.category)
            .replace("{brand}", &self.brand)
            .replace("{order}", &self.order.to_string())
            .replace("{buyer}", &self.buyer.id.to_string())
            .replace("{seller}", &self.seller.id.to_string())
            .replace("{admin}", &self.admin.id.to_string())
    }

    /// Run every probe of `table`.
    async fn run(&self, tally: &mut Tally, table: &[Probe]) {
        for p in table {
            let path = self.path(p.path);
            let body = p
                .body
                .as_ref()
                .map(|b| serde_json::from_str::<Value>(&self.path(&b.to_string())).unwrap());
            let a = self
                .s
                .call(
                    p.svc,
                    p.method.clone(),
                    &path,
                    self.token(p.who),
                    body.as_ref(),
                )
                .await;
            let ok = a.status == p.status && p.code.is_none_or(|code| a.is_error(code));
            tally.check(ok, || {
                format!(
                    "  {}{:?} {} {path} as {:?} body {}: expected {} {}, got {} {}",
                    if p.note.is_empty() {
                        String::new()
                    } else {
                        format!("[{}] ", p.note)
                    },
                    p.svc,
                    p.method,
                    p.who,
                    body.as_ref().map(Value::to_string).unwrap_or_default(),
                    p.status,
                    p.code.unwrap_or(""),
                    a.status,
                    a.text
                )
            });
        }
    }

    /// Every object the probes could touch, as its owner or an admin sees it.
    async fn snapshot(&self) -> Value {
        let (c, i) = (Svc::Catalog, Svc::Identity);
        let st = Some(self.seller.token.as_str());
        let at = Some(self.admin.token.as_str());
        let mut out = serde_json::Map::new();
        for (svc, path, token) in [
            (c, "/api/v1/products/{product}", st),
            (c, "/api/v1/products/{draft}", st),
            (c, "/api/v1/categories/{category}", at),
            (c, "/api/v1/categories/{category2}", at),
            (c, "/api/v1/brands/{brand}", at),
            (c, "/api/v1/brands/{brand}/categories", at),
            (c, "/api/v1/inventory/reservations/{order}", at),
            (i, "/api/v1/users/{buyer}", at),
            (i, "/api/v1/users/{seller}", at),
            (i, "/api/v1/users/{admin}", at),
            (Svc::Cart, "/api/v1/cart", Some(self.buyer.token.as_str())),
            (
                Svc::Order,
                "/api/v1/orders/{order}",
                Some(self.buyer.token.as_str()),
            ),
            (
                Svc::Payment,
                "/api/v1/payments/{order}",
                Some(self.buyer.token.as_str()),
            ),
            // Every account's balance: no probe moves money.
            (Svc::Payment, "/api/v1/ledger/accounts", at),
        ] {
            // The status too: a deleted object reads as a 404 in the "after" snapshot.
            let a = self
                .s
                .call(svc, Method::GET, &self.path(path), token, None)
                .await;
            out.insert(
                format!("{svc:?} {path}"),
                json!({"status": a.status, "body": a.json()}),
            );
        }
        Value::Object(out)
    }

    /// One probe per object: it was readable in `before` and is as it was then.
    async fn unchanged(&self, tally: &mut Tally, before: &Value) {
        let after = self.snapshot().await;
        for (key, was) in before.as_object().unwrap() {
            let now = &after[key];
            tally.check(was["status"] == 200 && was == now, || {
                format!("  {key} changed:\n    before {was}\n    after  {now}")
            });
        }
    }
}

// ---------------------------------------------------------------------------------------------
// API1: broken object-level authorization.

/// Every id-taking endpoint, called on the seller's, buyer's and admin's objects by the second
/// user of each role.
fn bola_table() -> Vec<Probe> {
    use Svc::*;
    use Who::*;
    let name = || Some(json!({"name": "Taken"}));
    let mut t = vec![];
    // Catalog: a second seller is not the owner; a buyer is not a seller at all.
    for (who, code) in [(Seller2, "NOT_PRODUCT_OWNER"), (Buyer2, "FORBIDDEN")] {
        t.extend([
            probe(Catalog, "PATCH", "/api/v1/products/{product}", name(), who, 403, Some(code)),
            probe(Catalog, "DELETE", "/api/v1/products/{product}", None, who, 403, Some(code)),
            probe(Catalog, "POST", "/api/v1/products/{product}/skus",
                  Some(json!({"sku_code": "STOLEN-1", "price": "1.00", "currency": "USD", "stock_quantity": 1})),
                  who, 403, Some(code)),
            probe(Catalog, "POST", "/api/v1/products/{product}/images",
                  Some(json!({"url": "https://evil.example/x.png"})), who, 403, Some(code)),
            probe(Catalog, "PATCH", "/api/v1/products/{product}/images/{image}",
                  Some(json!({"alt_text": "pwned"})), who, 403, Some(code)),
            probe(Catalog, "DELETE", "/api/v1/products/{product}/images/{image}", None, who, 403, Some(code)),
            probe(Catalog, "PATCH", "/api/v1/skus/{sku}", Some(json!({"price": "0.01"})), who, 403, Some(code)),
            probe(Catalog, "POST", "/api/v1/skus/{sku}/stock", Some(json!({"set": 0})), who, 403, Some(code)),
            probe(Catalog, "DELETE", "/api/v1/skus/{sku}", None, who, 403, Some(code)),
        ]);
    }
    // A draft is visible to its seller and admins only: another seller is told it does not exist.
    t.extend([
        probe(
            Catalog,
            "PATCH",
            "/api/v1/products/{draft}",
            Some(json!({"status": "active"})),
            Seller2,
            404,
            Some("PRODUCT_NOT_FOUND"),
        ),
        probe(
            Catalog,
            "DELETE",
            "/api/v1/products/{draft}",
            None,
            Seller2,
            404,
            Some("PRODUCT_NOT_FOUND"),
        ),
        probe(
            Catalog,
            "PATCH",
            "/api/v1/products/{draft}",
            Some(json!({"status": "active"})),
            Buyer2,
            403,
            Some("FORBIDDEN"),
        ),
    ]);
    for who in [Seller2, Buyer2, Anon] {
        t.push(probe(
            Catalog,
            "GET",
            "/api/v1/products/{draft}",
            None,
            who,
            404,
            Some("PRODUCT_NOT_FOUND"),
        ));
    }
    // Admin-owned objects and identity's user routes, by a second non-admin of each role.
    for who in [Seller2, Buyer2] {
        t.extend([
            probe(
                Catalog,
                "PATCH",
                "/api/v1/categories/{category}",
                name(),
                who,
                403,
                Some("FORBIDDEN"),
            ),
            probe(
                Catalog,
                "DELETE",
                "/api/v1/categories/{category}",
                None,
                who,
                403,
                Some("FORBIDDEN"),
            ),
            probe(
                Catalog,
                "PATCH",
                "/api/v1/brands/{brand}",
                name(),
                who,
                403,
                Some("FORBIDDEN"),
            ),
            probe(
                Catalog,
                "DELETE",
                "/api/v1/brands/{brand}",
                None,
                who,
                403,
                Some("FORBIDDEN"),
            ),
            probe(
                Catalog,
                "PUT",
                "/api/v1/brands/{brand}/categories/{category2}",
                None,
                who,
                403,
                Some("FORBIDDEN"),
            ),
            probe(
                Catalog,
                "DELETE",
                "/api/v1/brands/{brand}/categories/{category}",
                None,
                who,
                403,
                Some("FORBIDDEN"),
            ),
            probe(
                Catalog,
                "GET",
                "/api/v1/inventory/reservations/{order}",
                None,
                who,
                403,
                Some("FORBIDDEN"),
            ),
        ]);
        for target in [
            "/api/v1/users/{buyer}",
            "/api/v1/users/{seller}",
            "/api/v1/users/{admin}",
        ] {
            let role = |r| Some(json!({"role": r}));
            let (get, put, deact, act) = match target {
                "/api/v1/users/{buyer}" => (
                    "/api/v1/users/{buyer}",
                    "/api/v1/users/{buyer}/role",
                    "/api/v1/users/{buyer}/deactivate",
                    "/api/v1/users/{buyer}/activate",
                ),
                "/api/v1/users/{seller}" => (
                    "/api/v1/users/{seller}",
                    "/api/v1/users/{seller}/role",
                    "/api/v1/users/{seller}/deactivate",
                    "/api/v1/users/{seller}/activate",
                ),
                _ => (
                    "/api/v1/users/{admin}",
                    "/api/v1/users/{admin}/role",
                    "/api/v1/users/{admin}/deactivate",
                    "/api/v1/users/{admin}/activate",
                ),
            };
            t.extend([
                probe(Identity, "GET", get, None, who, 403, Some("FORBIDDEN")),
                probe(
                    Identity,
                    "PUT",
                    put,
                    role("SELLER"),
                    who,
                    403,
                    Some("FORBIDDEN"),
                ),
                probe(Identity, "POST", deact, None, who, 403, Some("FORBIDDEN")),
                probe(Identity, "POST", act, None, who, 403, Some("FORBIDDEN")),
            ]);
        }
    }
    // The cart is the caller's: another buyer's line is not theirs to change.
    t.extend([
        probe(
            Cart,
            "PUT",
            "/api/v1/cart/items/{sku}",
            Some(json!({"quantity": 5})),
            Buyer2,
            404,
            Some("CART_LINE_NOT_FOUND"),
        ),
        probe(
            Cart,
            "DELETE",
            "/api/v1/cart/items/{sku}",
            None,
            Buyer2,
            404,
            Some("CART_LINE_NOT_FOUND"),
        ),
    ]);
    // An order is its buyer's (and, for their lines, its sellers'): to anyone else it does not
    // exist, whatever they try.
    let gone = Some("ORDER_NOT_FOUND");
    for who in [Buyer2, Seller2] {
        t.extend([
            probe(Order, "GET", "/api/v1/orders/{order}", None, who, 404, gone),
            probe(
                Order,
                "POST",
                "/api/v1/orders/{order}/cancel",
                Some(json!({"reason": "not mine"})),
                who,
                404,
                gone,
            ),
            probe(
                Order,
                "POST",
                "/api/v1/orders/{order}/deliver",
                None,
                who,
                404,
                gone,
            ),
        ]);
    }
    t.push(probe(
        Order,
        "POST",
        "/api/v1/orders/{order}/ship",
        Some(json!({"tracking_number": "STOLEN-1"})),
        Seller2,
        404,
        gone,
    ));
    // A payment is its buyer's (and admins'): to another buyer, and to sellers — even the one
    // paid by it — it does not exist (contract §8).
    for who in [Buyer2, Seller, Seller2] {
        t.push(probe(
            Payment,
            "GET",
            "/api/v1/payments/{order}",
            None,
            who,
            404,
            Some("PAYMENT_NOT_FOUND"),
        ));
    }
    // The controls: the owner and an admin read it, so the refusals above are the caller's doing.
    for who in [Buyer, Admin] {
        t.push(probe(
            Payment,
            "GET",
            "/api/v1/payments/{order}",
            None,
            who,
            200,
            None,
        ));
    }
    t
}

#[tokio::test]
async fn api1_no_second_user_of_any_role_reads_or_changes_another_users_objects() {
    let w = World::build().await;
    let mut tally = Tally::new("API1 BOLA");
    let before = w.snapshot().await;
    w.run(&mut tally, &bola_table()).await;
    // The second buyer's cart does not show the first buyer's line.
    let cart =
        w.s.ok(
            Svc::Cart,
            "GET",
            "/api/v1/cart",
            Some(&w.buyer2.token),
            None,
            200,
        )
        .await;
    tally.check(cart["items"].as_array().is_some_and(Vec::is_empty), || {
        format!("  the second buyer's cart shows items: {cart}")
    });
    // Order lists show the caller's orders only: the first buyer's and seller's lists hold the
    // order (so its absence below is the filter's doing), the second ones' do not.
    let order_id = w.order.to_string();
    let lists = [
        ("/api/v1/orders", Who::Buyer, true),
        ("/api/v1/orders", Who::Buyer2, false),
        ("/api/v1/orders/seller/me", Who::Seller, true),
        ("/api/v1/orders/seller/me", Who::Seller2, false),
    ];
    for (path, who, holds) in lists {
        let a =
            w.s.call(Svc::Order, Method::GET, path, w.token(who), None)
                .await;
        let ids: Vec<String> = a.json()["items"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|o| o["id"].as_str())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        tally.check(a.status == 200 && ids.contains(&order_id) == holds, || {
            format!(
                "  Order GET {path} as {who:?}: expected the order {}, got {} {}",
                if holds { "listed" } else { "not listed" },
                a.status,
                a.text
            )
        });
    }
    w.unchanged(&mut tally, &before).await;
    // An idempotency key is the buyer's own: the second buyer sending the first's key and body
    // places an order of their own rather than being answered with the first's (after the
    // snapshot, since the new order reserves stock).
    let a =
        w.s.call_keyed(
            Svc::Order,
            Method::POST,
            "/api/v1/orders",
            Some(&w.buyer2.token),
            Some(&order_body(&w.sku)),
            Some(&w.order_key),
        )
        .await;
    let theirs = a.json();
    tally.check(
        a.status == 202
            && theirs["id"] != json!(w.order)
            && theirs["buyer_id"] == json!(w.buyer2.id),
        || {
            format!(
                "  the second buyer replaying the first's Idempotency-Key: {} {}",
                a.status, a.text
            )
        },
    );
    tally.finish();
}

// ---------------------------------------------------------------------------------------------
// API2: broken authentication.

fn claims_for(user: Uuid, role: Role) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        sub: user,
        role,
        iat: now,
        exp: now + 900,
        iss: test_utils::TEST_ISSUER.into(),
        aud: test_utils::TEST_AUDIENCE.into(),
        jti: Uuid::now_v7(),
    }
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// Every forged or unusable token for `user`, with the code it must be refused with.
fn bad_tokens(user: Uuid, role: Role) -> Vec<(&'static str, String, &'static str)> {
    let keys = test_utils::test_keys();
    let mut expired = claims_for(user, role);
    expired.iat -= 3600;
    expired.exp = expired.iat + 900;
    let mut audience = claims_for(user, role);
    audience.aud = "someone-else".into();
    let mut issuer = claims_for(user, role);
    issuer.iss = "evil-identity".into();
    let claims = serde_json::to_value(claims_for(user, role)).unwrap();
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims)
    );
    let hs = |secret: &[u8]| {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims_for(user, role),
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    };
    let other = Ed25519KeyPair::generate().unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(keys.key_id());
    let foreign = jsonwebtoken::encode(
        &header,
        &claims_for(user, role),
        &EncodingKey::from_ed_der(&other.pkcs8_der),
    )
    .unwrap();
    vec![
        (
            "expired",
            test_utils::sign_claims(&expired),
            "TOKEN_EXPIRED",
        ),
        (
            "wrong audience",
            test_utils::sign_claims(&audience),
            "INVALID_TOKEN",
        ),
        (
            "wrong issuer",
            test_utils::sign_claims(&issuer),
            "INVALID_TOKEN",
        ),
        ("alg none", none, "INVALID_TOKEN"),
        (
            "HS256 keyed with the public key PEM",
            hs(keys.public_pem().as_bytes()),
            "INVALID_TOKEN",
        ),
        (
            "HS256 keyed with the raw public key",
            hs(&keys.public_raw),
            "INVALID_TOKEN",
        ),
        ("signed by another Ed25519 key", foreign, "INVALID_TOKEN"),
        ("garbage", "not.a.jwt".into(), "INVALID_TOKEN"),
    ]
}

#[tokio::test]
async fn api2_forged_expired_and_revoked_tokens_are_refused_with_401_by_every_service() {
    let w = World::build().await;
    let mut tally = Tally::new("API2 broken authentication");
    let payment = w.path("/api/v1/payments/{order}");
    // A route of each service, and the user whose token it takes.
    let routes = [
        (Svc::Identity, "/api/v1/users/me", &w.buyer, Role::Buyer),
        (
            Svc::Catalog,
            "/api/v1/products/seller/me",
            &w.seller,
            Role::Seller,
        ),
        (Svc::Cart, "/api/v1/cart", &w.buyer, Role::Buyer),
        (Svc::Order, "/api/v1/orders", &w.buyer, Role::Buyer),
        (Svc::Payment, payment.as_str(), &w.buyer, Role::Buyer),
    ];
    for (svc, path, user, role) in routes {
        // The control: the real token is accepted, so a refusal below is the token's doing.
        let a =
            w.s.call(svc, Method::GET, path, Some(&user.token), None)
                .await;
        tally.check(a.status == 200, || {
            format!(
                "  {svc:?} {path} with a valid token: {} {}",
                a.status, a.text
            )
        });
        let a = w.s.call(svc, Method::GET, path, None, None).await;
        tally.check(a.status == 401 && a.is_error("UNAUTHENTICATED"), || {
            format!("  {svc:?} {path} without a token: {} {}", a.status, a.text)
        });
        for (what, token, code) in bad_tokens(user.id, role) {
            let a = w.s.call(svc, Method::GET, path, Some(&token), None).await;
            tally.check(a.status == 401 && a.is_error(code), || {
                format!(
                    "  {svc:?} {path} with a {what} token: expected 401 {code}, got {} {}",
                    a.status, a.text
                )
            });
        }
    }

    // Revoked: what identity writes on deactivation or a password change (docs/adr/010). The
    // services cache a looked-up mark (or its absence) for a second: poll until refused.
    for user in [&w.buyer, &w.seller] {
        shared::auth::revoke_access_tokens(
            &w.s.identity_state.redis,
            user.id,
            Duration::from_secs(960),
        )
        .await
        .unwrap();
    }
    for (svc, path, user, _) in routes {
        let start = Instant::now();
        let a = loop {
            let a =
                w.s.call(svc, Method::GET, path, Some(&user.token), None)
                    .await;
            if a.status != 200 || start.elapsed() > Duration::from_secs(5) {
                break a;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        tally.check(a.status == 401 && a.is_error("TOKEN_REVOKED"), || {
            format!(
                "  {svc:?} {path} with a revoked token: {} {}",
                a.status, a.text
            )
        });
    }
    tally.finish();
}

// ---------------------------------------------------------------------------------------------
// API3: mass assignment and excessive data exposure.

/// Writable shapes with a privileged field added: each must be refused (422, `deny_unknown_fields`)
/// or the field ignored, which `api3` checks on the stored object.
fn mass_assignment_table() -> Vec<(Probe, &'static str)> {
    use Svc::*;
    use Who::*;
    vec![
        (
            probe(
                Catalog,
                "POST",
                "/api/v1/products",
                Some(json!({"name": "Mine", "seller_id": "00000000-0000-0000-0000-000000000001"})),
                Seller,
                422,
                Some("INVALID_BODY"),
            ),
            "product seller_id at creation",
        ),
        (
            probe(
                Catalog,
                "POST",
                "/api/v1/products",
                Some(json!({"name": "Mine", "status": "active"})),
                Seller,
                422,
                Some("INVALID_BODY"),
            ),
            "product status at creation",
        ),
        (
            probe(
                Catalog,
                "POST",
                "/api/v1/products",
                Some(json!({"name": "Mine", "id": "00000000-0000-0000-0000-000000000001"})),
                Seller,
                422,
                Some("INVALID_BODY"),
            ),
            "product id at creation",
        ),
        (
            probe(
                Catalog,
                "PATCH",
                "/api/v1/products/{product}",
                Some(json!({"seller_id": "00000000-0000-0000-0000-000000000001"})),
                Seller,
                422,
                Some("INVALID_BODY"),
            ),
            "product seller_id",
        ),
        (
            probe(
                Catalog,
                "PATCH",
                "/api/v1/products/{product}",
                Some(json!({"id": "00000000-0000-0000-0000-000000000001"})),
                Seller,
                422,
                Some("INVALID_BODY"),
            ),
            "product id",
        ),
        (
            probe(
                Catalog,
                "POST",
                "/api/v1/products/{product}/skus",
                Some(
                    json!({"sku_code": "MA-1", "price": "1.00", "currency": "USD", "stock_quantity": 5,
                           "reserved_quantity": 5}),
                ),
                Seller,
                422,
                Some("INVALID_BODY"),
            ),
            "SKU reserved_quantity at creation",
        ),
        (
            probe(
                Catalog,
                "PATCH",
                "/api/v1/skus/{sku}",
                Some(json!({"reserved_quantity": 10})),
                Seller,
                422,
                Some("INVALID_BODY"),
            ),
            "SKU reserved_quantity",
        ),
        (
            probe(
                Catalog,
                "PATCH",
                "/api/v1/skus/{sku}",
                Some(json!({"stock_quantity": 1000})),
                Seller,
                422,
                Some("INVALID_BODY"),
            ),
            "SKU stock_quantity outside the stock endpoint",
        ),
        (
            probe(
                Catalog,
                "PATCH",
                "/api/v1/skus/{sku}",
                Some(json!({"product_id": "{draft}"})),
                Seller,
                422,
                Some("INVALID_BODY"),
            ),
            "SKU product_id",
        ),
        (
            probe(
                Catalog,
                "POST",
                "/api/v1/skus/{sku}/stock",
                Some(json!({"set": 10, "reserved_quantity": 0})),
                Seller,
                422,
                Some("INVALID_BODY"),
            ),
            "stock change reserved_quantity",
        ),
        (
            probe(
                Catalog,
                "PATCH",
                "/api/v1/products/{product}/images/{image}",
                Some(json!({"product_id": "{draft}"})),
                Seller,
                422,
                Some("INVALID_BODY"),
            ),
            "image product_id",
        ),
        (
            probe(
                Catalog,
                "POST",
                "/api/v1/categories",
                Some(json!({"name": "X", "id": "00000000-0000-0000-0000-000000000001"})),
                Admin,
                422,
                Some("INVALID_BODY"),
            ),
            "category id",
        ),
        (
            probe(
                Catalog,
                "POST",
                "/api/v1/brands",
                Some(json!({"name": "X", "id": "00000000-0000-0000-0000-000000000001"})),
                Admin,
                422,
                Some("INVALID_BODY"),
            ),
            "brand id",
        ),
        (
            probe(
                Cart,
                "PUT",
                "/api/v1/cart/items/{sku}",
                Some(json!({"quantity": 1, "unit_price": "0.01"})),
                Buyer,
                422,
                Some("INVALID_BODY"),
            ),
            "cart line price on a quantity change",
        ),
        (
            probe(
                Identity,
                "PATCH",
                "/api/v1/users/me",
                Some(json!({"role": "ADMIN"})),
                Buyer,
                403,
                Some("ROLE_CHANGE_FORBIDDEN"),
            ),
            "own role",
        ),
        (
            probe(
                Identity,
                "PATCH",
                "/api/v1/users/me",
                Some(json!({"role": "SELLER"})),
                Buyer,
                403,
                Some("ROLE_CHANGE_FORBIDDEN"),
            ),
            "own role to seller",
        ),
        (
            probe(
                Identity,
                "PUT",
                "/api/v1/users/{buyer}/role",
                Some(json!({"role": "ADMIN"})),
                Admin,
                403,
                Some("ADMIN_ROLE_OPERATOR_ONLY"),
            ),
            "promotion to admin over HTTP",
        ),
        (
            probe(
                Identity,
                "POST",
                "/api/v1/users/register",
                Some(
                    json!({"username": "wannabe", "email": "wannabe@example.com", "password": PASSWORD, "role": "ADMIN"}),
                ),
                Anon,
                422,
                Some("VALIDATION_FAILED"),
            ),
            "ADMIN at registration",
        ),
    ]
}

/// Keys no body a non-owner can read may hold.
const SECRET_KEYS: &[&str] = &[
    "password",
    "password_hash",
    "access_token",
    "refresh_token",
    "token",
    "token_hash",
    "stock_quantity",
    "reserved_quantity",
    "sold_quantity",
];

/// Keys of an order a seller in it may not read: what the buyer paid in all, with what, and who
/// the buyer is (contract §6: a seller sees their lines and `subtotal`).
const BUYER_ONLY_KEYS: &[&str] = &["total_amount", "payment_method", "buyer_id"];

/// The first of `keys` anywhere in `v`.
fn key_in(v: &Value, keys: &[&str]) -> Option<String> {
    match v {
        Value::Object(m) => m.iter().find_map(|(k, v)| {
            if keys.contains(&k.as_str()) {
                Some(k.clone())
            } else {
                key_in(v, keys)
            }
        }),
        Value::Array(a) => a.iter().find_map(|v| key_in(v, keys)),
        _ => None,
    }
}

/// The first key of `SECRET_KEYS` anywhere in `v`.
fn secret_key(v: &Value) -> Option<String> {
    key_in(v, SECRET_KEYS)
}

/// Keys that would hold card data (number, security code, expiry, holder); a payment holds only
/// the gateway's `tok_...` token for the card.
const CARD_KEYS: &[&str] = &[
    "card",
    "card_number",
    "number",
    "pan",
    "cvc",
    "cvv",
    "cvv2",
    "security_code",
    "exp_month",
    "exp_year",
    "expiry",
    "expiration",
    "cardholder",
    "cardholder_name",
    "last4",
    "bin",
];

/// Card data in a body: a key of `CARD_KEYS`, a `payment_method` that is not a `tok_...` token,
/// or a run of 13 to 19 digits standing alone (a card number: ids, times and amounts never make
/// one, a UUID's longest group being 12).
fn card_data(text: &str, body: &Value) -> Option<String> {
    if let Some(k) = key_in(body, CARD_KEYS) {
        return Some(format!("key {k}"));
    }
    let mut methods = vec![];
    collect_key(body, "payment_method", &mut methods);
    if let Some(m) = methods
        .iter()
        .find(|m| !m.as_str().is_some_and(|m| m.starts_with("tok_")))
    {
        return Some(format!("payment_method {m}"));
    }
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .find(|t| (13..=19).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit()))
        .map(|t| format!("digits {t}"))
}

/// Every value of `key` anywhere in `v`.
fn collect_key<'a>(v: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if k == key {
                    out.push(v);
                }
                collect_key(v, key, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_key(v, key, out)),
        _ => {}
    }
}

/// Fragments of internal error text that must never reach a client.
const INTERNAL_TEXT: &[&str] = &[
    "sqlx",
    "postgres",
    "panicked",
    "SQLSTATE",
    "syntax error at",
    "redis",
    "src/",
    ".rs:",
];

#[tokio::test]
async fn api3_privileged_fields_are_refused_or_ignored_and_no_body_exposes_secrets_or_counters() {
    let w = World::build().await;
    let mut tally = Tally::new("API3 mass assignment and exposure");
    let (c, i) = (Svc::Catalog, Svc::Identity);

    // Refused outright: the table. Nothing stored changes.
    let before = w.snapshot().await;
    let table: Vec<Probe> = mass_assignment_table()
        .into_iter()
        .map(|(mut p, note)| {
            p.note = note;
            if let Some(b) = &p.body {
                p.body = Some(serde_json::from_str(&w.path(&b.to_string())).unwrap());
            }
            p
        })
        .collect();
    w.run(&mut tally, &table).await;
    w.unchanged(&mut tally, &before).await;

    // Ignored where the shape tolerates extra keys: registration and profile edits.
    let name = format!("sneaky{}", &Uuid::now_v7().simple().to_string()[20..]);
    let forced = Uuid::now_v7();
    let a =
        w.s.call(
            i,
            Method::POST,
            "/api/v1/users/register",
            None,
            Some(&json!({
            "username": name, "email": format!("{name}@example.com"), "password": PASSWORD,
            "role": "BUYER", "id": forced, "email_verified": true, "status": "SUSPENDED",
            "password_hash": "x"})),
        )
        .await;
    let body = a.json();
    tally.check(
        a.status == 201
            && body["id"] != json!(forced)
            && body["email_verified"] == json!(false)
            && body["status"] == json!("active"),
        || {
            format!(
                "  register with id, email_verified and status: {} {}",
                a.status, a.text
            )
        },
    );
    let me_before =
        w.s.ok(
            i,
            "GET",
            "/api/v1/users/me",
            Some(&w.buyer.token),
            None,
            200,
        )
        .await;
    let a =
        w.s.call(
            i,
            Method::PATCH,
            "/api/v1/users/me",
            Some(&w.buyer.token),
            Some(&json!({
            "email_verified": true, "status": "SUSPENDED", "id": forced, "phone": "+15550100"})),
        )
        .await;
    let me_after =
        w.s.ok(
            i,
            "GET",
            "/api/v1/users/me",
            Some(&w.buyer.token),
            None,
            200,
        )
        .await;
    tally.check(
        a.status == 200
            && me_after["id"] == me_before["id"]
            && me_after["email_verified"] == me_before["email_verified"]
            && me_after["status"] == me_before["status"],
        || {
            format!(
                "  PATCH /users/me with id, email_verified, status: {} {}; now {me_after}",
                a.status, a.text
            )
        },
    );
    // The cart prices from the catalog, whatever the client says.
    let a = w
        .s
        .call(Svc::Cart, Method::POST, "/api/v1/cart/items", Some(&w.buyer2.token), Some(&json!({
            "sku_id": w.sku, "quantity": 1, "price": "0.01", "unit_price": "0.01", "currency": "XXX"})))
        .await;
    let body = a.json();
    let line = body["items"]
        .as_array()
        .and_then(|l| l.first())
        .cloned()
        .unwrap_or(Value::Null);
    tally.check(
        a.status == 200 && line["unit_price"] == "19.99" && line["currency"] == "USD",
        || format!("  cart line with a client price: {} {}", a.status, a.text),
    );
    // An order is priced by the catalog, starts pending and unpaid, and is the caller's, whatever
    // the body says (contract §6: anything else a client sends is ignored).
    let forced_order = Uuid::now_v7();
    let mut body = order_body(&w.sku);
    for (k, v) in [
        ("id", json!(forced_order)),
        ("status", json!("confirmed")),
        ("total_amount", json!("0.01")),
        ("currency", json!("JPY")),
        ("buyer_id", json!(w.buyer2.id)),
        ("payment_status", json!("captured")),
    ] {
        body[k] = v;
    }
    body["items"][0]["unit_price"] = json!("0.01");
    body["items"][0]["seller_id"] = json!(w.seller2.id);
    let a =
        w.s.call(
            Svc::Order,
            Method::POST,
            "/api/v1/orders",
            Some(&w.buyer.token),
            Some(&body),
        )
        .await;
    let placed = a.json();
    let priced = |o: &Value| {
        o["buyer_id"] == json!(w.buyer.id)
            && o["total_amount"] == "19.99"
            && o["currency"] == "USD"
            && o["items"][0]["unit_price"] == "19.99"
            && o["items"][0]["seller_id"] == json!(w.seller.id)
    };
    tally.check(
        a.status == 202
            && placed["id"] != json!(forced_order)
            && placed["status"] == "pending"
            && placed["payment_status"] == "none"
            && priced(&placed),
        || {
            format!(
                "  order with id, status, total, currency, buyer, payment status and a line price: {} {}",
                a.status, a.text
            )
        },
    );
    if let Some(id) = placed["id"].as_str() {
        let path = format!("/api/v1/orders/{id}");
        let stored =
            w.s.ok(Svc::Order, "GET", &path, Some(&w.buyer.token), None, 200)
                .await;
        // The saga may have moved it on since (it pays with `tok_visa`, and payment runs): to
        // `awaiting_payment` (catalog reserved, still unpaid) or `confirmed` (authorized, perhaps
        // captured by now). What the body claimed shows in the answer above, which is the state
        // placement wrote; here it is the path the order took that is checked.
        let saga_state = match stored["status"].as_str() {
            Some("pending" | "awaiting_payment") => stored["payment_status"] == "none",
            Some("confirmed") => matches!(
                stored["payment_status"].as_str(),
                Some("authorized" | "captured")
            ),
            _ => false,
        };
        tally.check(
            priced(&stored) && saga_state && stored["status_history"][0]["status"] == "pending",
            || format!("  the order placed with privileged fields, stored: {stored}"),
        );
        let a =
            w.s.call(Svc::Order, Method::GET, &path, Some(&w.buyer2.token), None)
                .await;
        tally.check(a.status == 404 && a.is_error("ORDER_NOT_FOUND"), || {
            format!(
                "  the buyer named in the body reads the order: {} {}",
                a.status, a.text
            )
        });
    }

    // Exposure: public and other users' views hold no secret or inventory counter.
    let sku_lookup = format!("/api/v1/skus?ids={}", w.sku);
    let slug =
        w.s.ok(
            c,
            "GET",
            &w.path("/api/v1/products/{product}"),
            None,
            None,
            200,
        )
        .await["slug"]
            .as_str()
            .unwrap()
            .to_owned();
    let slug_path = format!("/api/v1/products/slug/{slug}");
    let reads: Vec<(Svc, String, Option<&str>)> = vec![
        (c, w.path("/api/v1/products/{product}"), None),
        (
            c,
            w.path("/api/v1/products/{product}"),
            Some(&w.buyer.token),
        ),
        (
            c,
            w.path("/api/v1/products/{product}"),
            Some(&w.seller2.token),
        ),
        (c, slug_path, None),
        (c, "/api/v1/products".into(), None),
        (c, w.path("/api/v1/products?category_id={category}"), None),
        (c, sku_lookup, None),
        (c, "/api/v1/categories".into(), None),
        (c, "/api/v1/brands".into(), None),
        (i, "/api/v1/users/me".into(), Some(&w.buyer.token)),
        (i, w.path("/api/v1/users/{buyer}"), Some(&w.admin.token)),
        (i, "/api/v1/users".into(), Some(&w.admin.token)),
        (i, "/.well-known/jwks.json".into(), None),
        (Svc::Cart, "/api/v1/cart".into(), Some(&w.buyer.token)),
        (
            Svc::Order,
            w.path("/api/v1/orders/{order}"),
            Some(&w.buyer.token),
        ),
        (Svc::Order, "/api/v1/orders".into(), Some(&w.buyer.token)),
        (
            Svc::Order,
            w.path("/api/v1/orders/{order}"),
            Some(&w.seller.token),
        ),
        (
            Svc::Order,
            "/api/v1/orders/seller/me".into(),
            Some(&w.seller.token),
        ),
        (
            Svc::Order,
            w.path("/api/v1/orders/{order}"),
            Some(&w.admin.token),
        ),
        (
            Svc::Payment,
            w.path("/api/v1/payments/{order}"),
            Some(&w.buyer.token),
        ),
        (
            Svc::Payment,
            w.path("/api/v1/payments/{order}"),
            Some(&w.admin.token),
        ),
        (
            Svc::Payment,
            "/api/v1/payments/seller/me/balance".into(),
            Some(&w.seller.token),
        ),
        (
            Svc::Payment,
            "/api/v1/ledger/trial-balance".into(),
            Some(&w.admin.token),
        ),
        (
            Svc::Payment,
            "/api/v1/ledger/accounts".into(),
            Some(&w.admin.token),
        ),
        (
            Svc::Payment,
            "/api/v1/ledger/reconciliation".into(),
            Some(&w.admin.token),
        ),
    ];
    for (svc, path, token) in reads {
        let a = w.s.call(svc, Method::GET, &path, token, None).await;
        let leak = secret_key(&a.json());
        tally.check(a.status == 200 && leak.is_none(), || {
            format!(
                "  {svc:?} GET {path} exposes {leak:?}: {} {}",
                a.status, a.text
            )
        });
    }
    // The owner still sees the counters (the hiding is a view, not a loss).
    let own =
        w.s.ok(
            c,
            "GET",
            &w.path("/api/v1/products/{product}"),
            Some(&w.seller.token),
            None,
            200,
        )
        .await;
    tally.check(own["skus"][0]["stock_quantity"].is_number(), || {
        format!("  the owner's view lacks the counters: {own}")
    });

    // A seller in an order sees their lines and subtotal, not what the buyer paid in all, with
    // what, or who the buyer is; the buyer sees all three (so their absence is the view's doing).
    let seller_views = [
        (w.path("/api/v1/orders/{order}"), None),
        ("/api/v1/orders/seller/me".to_owned(), Some("items")),
    ];
    for (path, list) in seller_views {
        let a =
            w.s.call(Svc::Order, Method::GET, &path, Some(&w.seller.token), None)
                .await;
        let body = a.json();
        let view = match list {
            Some(k) => body[k]
                .as_array()
                .and_then(|l| l.iter().find(|o| o["id"] == json!(w.order)))
                .cloned()
                .unwrap_or(Value::Null),
            None => body.clone(),
        };
        let leak = key_in(&body, BUYER_ONLY_KEYS);
        tally.check(
            a.status == 200 && view["subtotal"] == "19.99" && leak.is_none(),
            || {
                format!(
                    "  the seller's view {path} exposes {leak:?} (or is not the seller's view): {} {}",
                    a.status, a.text
                )
            },
        );
    }
    let whole =
        w.s.ok(
            Svc::Order,
            "GET",
            &w.path("/api/v1/orders/{order}"),
            Some(&w.buyer.token),
            None,
            200,
        )
        .await;
    let missing: Vec<&&str> = BUYER_ONLY_KEYS
        .iter()
        .filter(|k| whole.get(**k).is_none())
        .collect();
    tally.check(missing.is_empty(), || {
        format!("  the buyer's view lacks {missing:?}: {whole}")
    });

    // A payment holds the gateway's token for the card and nothing of the card itself: not in
    // the buyer's view, the admin's, or the ledger's (which holds accounts and amounts only).
    let payment_path = w.path("/api/v1/payments/{order}");
    let card_reads = [
        (payment_path.as_str(), &w.buyer.token),
        (payment_path.as_str(), &w.admin.token),
        ("/api/v1/payments/seller/me/balance", &w.seller.token),
        ("/api/v1/ledger/trial-balance", &w.admin.token),
        ("/api/v1/ledger/accounts", &w.admin.token),
        ("/api/v1/ledger/reconciliation", &w.admin.token),
    ];
    for (path, token) in card_reads {
        let a =
            w.s.call(Svc::Payment, Method::GET, path, Some(token), None)
                .await;
        let body = a.json();
        let leak = card_data(&a.text, &body);
        tally.check(a.status == 200 && leak.is_none(), || {
            format!(
                "  Payment GET {path} holds card data ({leak:?}): {} {}",
                a.status, a.text
            )
        });
    }
    // The payment is the fixture's, paid with the token the order was placed with (so the scan
    // above read a real payment).
    let paid =
        w.s.ok(
            Svc::Payment,
            "GET",
            &payment_path,
            Some(&w.buyer.token),
            None,
            200,
        )
        .await;
    tally.check(
        paid["order_id"] == json!(w.order)
            && paid["payment_method"] == "tok_visa"
            && paid["status"] == "captured",
        || format!("  the buyer's payment is not the fixture's captured tok_visa payment: {paid}"),
    );

    // Error bodies carry no internal text.
    let errors: Vec<(Svc, Method, &str, Option<&str>, String)> = vec![
        (
            c,
            Method::GET,
            "/api/v1/products/not-a-uuid",
            None,
            String::new(),
        ),
        (
            c,
            Method::POST,
            "/api/v1/products",
            Some(&w.seller.token),
            "{\"name\": ".into(),
        ),
        (
            c,
            Method::GET,
            "/api/v1/products?cursor=%27%3B--",
            None,
            String::new(),
        ),
        (
            c,
            Method::GET,
            "/api/v1/products?min_price=abc",
            None,
            String::new(),
        ),
        (
            i,
            Method::POST,
            "/api/v1/users/login",
            None,
            "{\"username\": 1}".into(),
        ),
        (
            i,
            Method::GET,
            "/api/v1/users?cursor=zzz",
            Some(&w.admin.token),
            String::new(),
        ),
        (
            Svc::Cart,
            Method::POST,
            "/api/v1/cart/items",
            Some(&w.buyer.token),
            "{\"sku_id\": \"nope\", \"quantity\": 1}".into(),
        ),
        (
            Svc::Order,
            Method::GET,
            "/api/v1/orders/not-a-uuid",
            Some(&w.buyer.token),
            String::new(),
        ),
        (
            Svc::Payment,
            Method::GET,
            "/api/v1/payments/not-a-uuid",
            Some(&w.buyer.token),
            String::new(),
        ),
        (
            Svc::Order,
            Method::POST,
            "/api/v1/orders",
            Some(&w.buyer.token),
            "{\"items\": ".into(),
        ),
        (
            Svc::Order,
            Method::GET,
            "/api/v1/orders?cursor=%27%3B--",
            Some(&w.buyer.token),
            String::new(),
        ),
        (
            Svc::Order,
            Method::POST,
            "/api/v1/orders",
            Some(&w.buyer.token),
            format!(
                "{{\"items\": [{{\"sku_id\": \"{}\", \"quantity\": 1}}], \"shipping_address\": {{\"name\": \"A\", \"line1\": \"B\", \"city\": \"C\", \"postal_code\": \"D\", \"country\": \"ZZ\"}}, \"payment_method\": \"card 4242\"}}",
                w.sku
            ),
        ),
    ];
    for (svc, method, path, token, body) in errors {
        let a = if body.is_empty() {
            w.s.call(svc, method.clone(), path, token, None).await
        } else {
            w.s.call_raw(svc, method.clone(), path, token, body).await
        };
        let internal = INTERNAL_TEXT
            .iter()
            .find(|t| a.text.to_lowercase().contains(&t.to_lowercase()));
        tally.check((400..500).contains(&a.status) && internal.is_none(), || {
            format!(
                "  {svc:?} {method} {path}: {} {} (internal text {internal:?})",
                a.status, a.text
            )
        });
    }
    tally.finish();
}

// ---------------------------------------------------------------------------------------------
// API4: unrestricted resource consumption.

#[tokio::test]
async fn api4_oversized_bodies_huge_limits_deep_json_and_many_ids_are_refused_without_a_5xx() {
    let w = World::build().await;
    let mut tally = Tally::new("API4 resource consumption");
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(300 * 1024));
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_obj = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let posts = [
        (Svc::Identity, "/api/v1/users/register", None),
        (
            Svc::Catalog,
            "/api/v1/products",
            Some(w.seller.token.as_str()),
        ),
        (
            Svc::Cart,
            "/api/v1/cart/items",
            Some(w.buyer.token.as_str()),
        ),
        (Svc::Order, "/api/v1/orders", Some(w.buyer.token.as_str())),
        (
            Svc::Order,
            "/api/v1/orders/{order}/cancel",
            Some(w.buyer.token.as_str()),
        ),
        (
            Svc::Order,
            "/api/v1/orders/{order}/ship",
            Some(w.seller.token.as_str()),
        ),
    ];
    for (svc, path, token) in posts {
        let path = &w.path(path);
        let a =
            w.s.call_raw(svc, Method::POST, path, token, big.clone())
                .await;
        tally.check(a.status == 413 && a.is_error("PAYLOAD_TOO_LARGE"), || {
            format!(
                "  {svc:?} POST {path} with 300 KiB: {} {}",
                a.status, a.text
            )
        });
        for (what, body) in [("deep array", &deep), ("deep object", &deep_obj)] {
            let a =
                w.s.call_raw(svc, Method::POST, path, token, body.clone())
                    .await;
            tally.check((400..500).contains(&a.status), || {
                format!(
                    "  {svc:?} POST {path} with a {what}: {} {}",
                    a.status, a.text
                )
            });
        }
    }
    let many: Vec<String> = (0..101).map(|_| Uuid::now_v7().to_string()).collect();
    let lookup = format!("/api/v1/skus?ids={}", many.join(","));
    let gets = [
        (Svc::Catalog, "/api/v1/products?limit=1000".to_owned(), None),
        (
            Svc::Catalog,
            "/api/v1/products/seller/me?limit=1000".to_owned(),
            Some(w.seller.token.as_str()),
        ),
        (
            Svc::Identity,
            "/api/v1/users?limit=1000".to_owned(),
            Some(w.admin.token.as_str()),
        ),
        (Svc::Catalog, lookup, None),
        (
            Svc::Order,
            "/api/v1/orders?limit=100000".to_owned(),
            Some(w.buyer.token.as_str()),
        ),
        (
            Svc::Order,
            "/api/v1/orders/seller/me?limit=100000".to_owned(),
            Some(w.seller.token.as_str()),
        ),
    ];
    for (svc, path, token) in gets {
        let a = w.s.call(svc, Method::GET, &path, token, None).await;
        tally.check(matches!(a.status, 400 | 422), || {
            format!(
                "  {svc:?} GET {}: {} {}",
                &path[..path.len().min(80)],
                a.status,
                a.text
            )
        });
    }
    // A cart quantity far beyond any stock or limit.
    let a =
        w.s.call(
            Svc::Cart,
            Method::PUT,
            &w.path("/api/v1/cart/items/{sku}"),
            Some(&w.buyer.token),
            Some(&json!({"quantity": i64::MAX})),
        )
        .await;
    tally.check((400..500).contains(&a.status), || {
        format!("  cart quantity i64::MAX: {} {}", a.status, a.text)
    });
    // An order holds at most 50 lines of at most 99 units (contract §6).
    let mut lines = order_body(&w.sku);
    lines["items"] = (0..51)
        .map(|_| json!({"sku_id": Uuid::now_v7(), "quantity": 1}))
        .collect();
    let mut huge = order_body(&w.sku);
    huge["items"][0]["quantity"] = json!(i64::MAX);
    for (what, body) in [("51 lines", lines), ("quantity i64::MAX", huge)] {
        let a =
            w.s.call(
                Svc::Order,
                Method::POST,
                "/api/v1/orders",
                Some(&w.buyer.token),
                Some(&body),
            )
            .await;
        tally.check(a.status == 422 && a.is_error("VALIDATION_FAILED"), || {
            format!("  order with {what}: {} {}", a.status, a.text)
        });
    }
    tally.finish();
}

// ---------------------------------------------------------------------------------------------
// API5: broken function-level authorization.

/// Every admin route (as buyer and seller) and every seller write (as buyer).
fn function_table() -> Vec<Probe> {
    use Svc::*;
    use Who::*;
    let mut t = vec![];
    for who in [Buyer, Seller] {
        let f = Some("FORBIDDEN");
        t.extend([
            probe(Identity, "GET", "/api/v1/users", None, who, 403, f),
            probe(Identity, "GET", "/api/v1/users/{buyer}", None, who, 403, f),
            probe(
                Identity,
                "PUT",
                "/api/v1/users/{buyer}/role",
                Some(json!({"role": "SELLER"})),
                who,
                403,
                f,
            ),
            probe(
                Identity,
                "POST",
                "/api/v1/users/{buyer}/deactivate",
                None,
                who,
                403,
                f,
            ),
            probe(
                Identity,
                "POST",
                "/api/v1/users/{buyer}/activate",
                None,
                who,
                403,
                f,
            ),
            probe(
                Catalog,
                "POST",
                "/api/v1/categories",
                Some(json!({"name": "Rogue"})),
                who,
                403,
                f,
            ),
            probe(
                Catalog,
                "PATCH",
                "/api/v1/categories/{category}",
                Some(json!({"name": "Rogue"})),
                who,
                403,
                f,
            ),
            probe(
                Catalog,
                "DELETE",
                "/api/v1/categories/{category2}",
                None,
                who,
                403,
                f,
            ),
            probe(
                Catalog,
                "POST",
                "/api/v1/brands",
                Some(json!({"name": "Rogue"})),
                who,
                403,
                f,
            ),
            probe(
                Catalog,
                "PATCH",
                "/api/v1/brands/{brand}",
                Some(json!({"name": "Rogue"})),
                who,
                403,
                f,
            ),
            probe(
                Catalog,
                "DELETE",
                "/api/v1/brands/{brand}",
                None,
                who,
                403,
                f,
            ),
            probe(
                Catalog,
                "PUT",
                "/api/v1/brands/{brand}/categories/{category2}",
                None,
                who,
                403,
                f,
            ),
            probe(
                Catalog,
                "DELETE",
                "/api/v1/brands/{brand}/categories/{category}",
                None,
                who,
                403,
                f,
            ),
            probe(Catalog, "GET", "/api/v1/inventory/audit", None, who, 403, f),
            probe(
                Catalog,
                "GET",
                "/api/v1/inventory/reservations/{order}",
                None,
                who,
                403,
                f,
            ),
            probe(
                Payment,
                "GET",
                "/api/v1/ledger/trial-balance",
                None,
                who,
                403,
                f,
            ),
            probe(Payment, "GET", "/api/v1/ledger/accounts", None, who, 403, f),
            probe(
                Payment,
                "GET",
                "/api/v1/ledger/reconciliation",
                None,
                who,
                403,
                f,
            ),
        ]);
    }
    let f = Some("FORBIDDEN");
    t.extend([
        probe(
            Catalog,
            "POST",
            "/api/v1/products",
            Some(json!({"name": "Buyer's"})),
            Buyer,
            403,
            f,
        ),
        probe(
            Catalog,
            "GET",
            "/api/v1/products/seller/me",
            None,
            Buyer,
            403,
            f,
        ),
        probe(
            Order,
            "GET",
            "/api/v1/orders/seller/me",
            None,
            Buyer,
            403,
            f,
        ),
        probe(
            Order,
            "POST",
            "/api/v1/orders/{order}/ship",
            Some(json!({"tracking_number": "BUYER-1"})),
            Buyer,
            403,
            f,
        ),
        probe(
            Payment,
            "GET",
            "/api/v1/payments/seller/me/balance",
            None,
            Buyer,
            403,
            f,
        ),
    ]);
    // Placing an order is a buyer's: not a seller's, nor an admin's.
    for who in [Seller, Admin] {
        t.push(probe(
            Order,
            "POST",
            "/api/v1/orders",
            Some(order_body("{sku}")),
            who,
            403,
            f,
        ));
    }
    // The same routes answer an admin (or the seller), so the refusals above are the role's doing.
    t.extend([
        probe(Identity, "GET", "/api/v1/users", None, Admin, 200, None),
        probe(
            Identity,
            "GET",
            "/api/v1/users/{buyer}",
            None,
            Admin,
            200,
            None,
        ),
        probe(
            Catalog,
            "GET",
            "/api/v1/inventory/audit",
            None,
            Admin,
            200,
            None,
        ),
        probe(
            Catalog,
            "GET",
            "/api/v1/inventory/reservations/{order}",
            None,
            Admin,
            200,
            None,
        ),
        probe(
            Catalog,
            "GET",
            "/api/v1/products/seller/me",
            None,
            Seller,
            200,
            None,
        ),
        probe(
            Order,
            "GET",
            "/api/v1/orders/seller/me",
            None,
            Seller,
            200,
            None,
        ),
        // The seller gets past the role check on ship to the body's refusal (the order is
        // `confirmed`, so a valid ship by its seller would ship it and change the world; a
        // tracking number over 100 characters is refused before anything is read or written).
        probe(
            Order,
            "POST",
            "/api/v1/orders/{order}/ship",
            Some(json!({"tracking_number": "S".repeat(101)})),
            Seller,
            422,
            Some("VALIDATION_FAILED"),
        ),
        probe(
            Payment,
            "GET",
            "/api/v1/ledger/trial-balance",
            None,
            Admin,
            200,
            None,
        ),
        probe(
            Payment,
            "GET",
            "/api/v1/ledger/accounts",
            None,
            Admin,
            200,
            None,
        ),
        probe(
            Payment,
            "GET",
            "/api/v1/ledger/reconciliation",
            None,
            Admin,
            200,
            None,
        ),
        probe(
            Payment,
            "GET",
            "/api/v1/payments/seller/me/balance",
            None,
            Seller,
            200,
            None,
        ),
    ]);
    // Anonymous callers are asked to authenticate on every protected route.
    let u = Some("UNAUTHENTICATED");
    t.extend([
        probe(Identity, "GET", "/api/v1/users", None, Anon, 401, u),
        probe(Identity, "GET", "/api/v1/users/me", None, Anon, 401, u),
        probe(
            Catalog,
            "POST",
            "/api/v1/products",
            Some(json!({"name": "Anon"})),
            Anon,
            401,
            u,
        ),
        probe(
            Catalog,
            "POST",
            "/api/v1/categories",
            Some(json!({"name": "Anon"})),
            Anon,
            401,
            u,
        ),
        probe(
            Catalog,
            "GET",
            "/api/v1/inventory/audit",
            None,
            Anon,
            401,
            u,
        ),
        probe(Cart, "GET", "/api/v1/cart", None, Anon, 401, u),
        probe(Order, "GET", "/api/v1/orders", None, Anon, 401, u),
        probe(
            Payment,
            "GET",
            "/api/v1/payments/{order}",
            None,
            Anon,
            401,
            u,
        ),
        probe(
            Payment,
            "GET",
            "/api/v1/payments/seller/me/balance",
            None,
            Anon,
            401,
            u,
        ),
        probe(
            Payment,
            "GET",
            "/api/v1/ledger/trial-balance",
            None,
            Anon,
            401,
            u,
        ),
        probe(
            Order,
            "POST",
            "/api/v1/orders",
            Some(order_body("{sku}")),
            Anon,
            401,
            u,
        ),
    ]);
    t
}

#[tokio::test]
async fn api5_admin_routes_refuse_buyers_and_sellers_and_seller_writes_refuse_buyers() {
    let w = World::build().await;
    let mut tally = Tally::new("API5 function-level authorization");
    let before = w.snapshot().await;
    w.run(&mut tally, &function_table()).await;
    w.unchanged(&mut tally, &before).await;
    tally.finish();
}
