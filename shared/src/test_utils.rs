//! Test fixtures (feature `test-utils`, never in production builds): a fresh, migrated database per
//! test copied from a template, a Redis key prefix per test, and access tokens signed with a
//! throwaway key pair so tests can act as any user without going through identity.
//!
//! nextest runs every test in its own process, so the template is guarded by a Postgres advisory
//! lock rather than by anything in memory.

// Fixtures fail loudly: a panic is how a broken fixture reports itself inside a test.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::auth::{Claims, Ed25519KeyPair, JwtVerifier, Role};

/// Logs to the test output when `TEST_LOG=1`.
pub fn init_logs() {
    crate::telemetry::init_for_tests();
}

/// Server URL (any database) used to create test databases.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A key prefix no other test uses.
pub fn unique_redis_prefix() -> String {
    format!("test:{}:", Uuid::now_v7().simple())
}

fn url_for(db: &str) -> String {
    let base = admin_url();
    match base.rfind('/') {
        Some(i) if base[..i].contains("://") && base[i + 1..].find('?').is_none() => {
            format!("{}/{db}", &base[..i])
        }
        _ => format!("{base}/{db}"),
    }
}

/// The start of every test database's and template's name: `TEST_DATABASE_PREFIX`, default
/// `koupang`. `scripts/test.sh` sets one per run (`koupang_r<run id>`), so a run's clean-up can
/// tell its own leftovers from the databases of another run going on at the same time.
fn database_prefix() -> String {
    std::env::var("TEST_DATABASE_PREFIX").unwrap_or_else(|_| "koupang".into())
}

/// Postgres silently truncates longer names, which could make two tests' databases one.
fn checked_name(name: String) -> anyhow::Result<String> {
    anyhow::ensure!(
        name.len() <= 63,
        "test database name '{name}' is longer than Postgres' 63 bytes: shorten \
         TEST_DATABASE_PREFIX or the service name"
    );
    Ok(name)
}

/// A database that exists for one test and is dropped with it.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    /// Create `<prefix>_test_<service>_<id>` from a template holding `migrator`'s schema.
    pub async fn create(service: &str, migrator: &Migrator) -> anyhow::Result<Self> {
        let checksum: u64 = migrator
            .iter()
            .flat_map(|m| m.checksum.iter().copied())
            .fold(0xcbf29ce484222325u64, |h, b| {
                (h ^ b as u64).wrapping_mul(0x100000001b3)
            });
        let prefix = database_prefix();
        let template = checked_name(format!("{prefix}_tpl_{service}_{checksum:016x}"))?;
        let name = checked_name(format!(
            "{prefix}_test_{service}_{}",
            Uuid::now_v7().simple()
        ))?;
        let mut admin = PgConnection::connect(&admin_url()).await?;
        sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
            .bind(&template)
            .execute(&mut admin)
            .await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&template)
                .fetch_one(&mut admin)
                .await?;
        if !exists {
            let build = async {
                sqlx::query(&format!("CREATE DATABASE \"{template}\""))
                    .execute(&mut admin)
                    .await?;
                let mut conn = PgConnection::connect(&url_for(&template)).await?;
                migrator.run(&mut conn).await?;
                conn.close().await?;
                anyhow::Ok(())
            };
            if let Err(e) = build.await {
                let _ = sqlx::query(&format!(
                    "DROP DATABASE IF EXISTS \"{template}\" WITH (FORCE)"
                ))
                .execute(&mut admin)
                .await;
                let _ = sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
                    .bind(&template)
                    .execute(&mut admin)
                    .await;
                return Err(e);
            }
        }
        sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
            .bind(&template)
            .execute(&mut admin)
            .await?;
        sqlx::query(&format!(
            "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""
        ))
        .execute(&mut admin)
        .await?;
        admin.close().await?;
        Ok(Self {
            url: url_for(&name),
            name,
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop runs outside any runtime guarantee, so use a private one on a plain thread.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&admin_url()).await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .execute(&mut admin)
                            .await;
                }
            });
        })
        .join();
    }
}

/// The process-wide throwaway signing key of the tests.
pub fn test_keys() -> &'static Ed25519KeyPair {
    static KEYS: OnceLock<Ed25519KeyPair> = OnceLock::new();
    KEYS.get_or_init(|| Ed25519KeyPair::generate().unwrap_or_else(|e| panic!("test key: {e}")))
}

pub const TEST_ISSUER: &str = "koupang-identity";
pub const TEST_AUDIENCE: &str = "koupang";

pub fn test_verifier() -> JwtVerifier {
    JwtVerifier::from_raw_public_key(&test_keys().public_raw, TEST_ISSUER, TEST_AUDIENCE)
}

/// Sign arbitrary claims with the test key.
pub fn sign_claims(claims: &Claims) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(test_keys().key_id());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_ed_der(&test_keys().pkcs8_der),
    )
    .unwrap_or_else(|e| panic!("signing test token: {e}"))
}

/// A valid 15-minute access token for `user` with `role`.
pub fn mint_token(user: Uuid, role: Role) -> String {
    let now = chrono::Utc::now().timestamp();
    sign_claims(&Claims {
        sub: user,
        role,
        iat: now,
        exp: now + 900,
        iss: TEST_ISSUER.into(),
        aud: TEST_AUDIENCE.into(),
        jti: Uuid::now_v7(),
    })
}

/// A PEM file holding the test key's public half, for services that verify tokens from
/// `jwt_public_key_path` (one file per test process).
pub fn public_key_file() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join("koupang-test-keys");
        std::fs::create_dir_all(&dir).expect("key folder");
        let path = dir.join(format!("{}.pub.pem", std::process::id()));
        std::fs::write(&path, test_keys().public_pem()).expect("public key file");
        path.display().to_string()
    })
}

/// Assert the one error body of contract §2 with `status` and `code` (and the response's request id
/// in it); returns the body.
pub async fn assert_error(
    resp: reqwest::Response,
    status: reqwest::StatusCode,
    code: &str,
) -> serde_json::Value {
    assert_eq!(resp.status(), status, "status of a {code} answer");
    let request_id = resp
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().expect("ASCII request id").to_owned());
    let body: serde_json::Value = resp.json().await.expect("JSON error body");
    assert_eq!(body["error"]["code"], code, "body: {body}");
    assert!(body["error"]["message"].is_string(), "body: {body}");
    assert_eq!(
        body["error"]["request_id"].as_str().map(str::to_owned),
        request_id,
        "error body carries the response's request id"
    );
    body
}

/// An HTTP client bound to one service's base URL, with the request shapes API tests use.
#[derive(Clone)]
pub struct Http {
    pub base: String,
    pub client: reqwest::Client,
}

impl Http {
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            base: base.into(),
            client: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Send `method path` with an optional bearer token and JSON body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> reqwest::Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().await.expect("request")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.send(reqwest::Method::GET, path, None, None).await
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> reqwest::Response {
        self.send(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.send(reqwest::Method::POST, path, None, Some(&body))
            .await
    }

    pub async fn post_auth(
        &self,
        path: &str,
        token: &str,
        body: serde_json::Value,
    ) -> reqwest::Response {
        self.send(reqwest::Method::POST, path, Some(token), Some(&body))
            .await
    }

    pub async fn patch_auth(
        &self,
        path: &str,
        token: &str,
        body: serde_json::Value,
    ) -> reqwest::Response {
        self.send(reqwest::Method::PATCH, path, Some(token), Some(&body))
            .await
    }

    pub async fn put_auth(
        &self,
        path: &str,
        token: &str,
        body: serde_json::Value,
    ) -> reqwest::Response {
        self.send(reqwest::Method::PUT, path, Some(token), Some(&body))
            .await
    }

    pub async fn delete_auth(&self, path: &str, token: &str) -> reqwest::Response {
        self.send(reqwest::Method::DELETE, path, Some(token), None)
            .await
    }
}

/// Publish `env` on `prefix + topic` of the test broker, keyed by its aggregate.
pub async fn publish(brokers: &str, topic: &str, env: &crate::events::Envelope) {
    use rdkafka::producer::FutureRecord;
    let producer = crate::kafka::producer(brokers, "test-publisher").expect("producer");
    let payload = env.to_json();
    producer
        .send(
            FutureRecord::to(topic)
                .key(env.aggregate_id.as_bytes())
                .payload(&payload)
                .headers(crate::kafka::headers(&env.headers())),
            std::time::Duration::from_secs(10),
        )
        .await
        .expect("publish");
}

/// The test broker (`TEST_KAFKA_BROKERS`, default `127.0.0.1:19092`).
pub fn brokers() -> String {
    std::env::var("TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:19092".into())
}

/// Poll `check` every 50 ms until it returns `Some`, and return that; fail the test naming `what`
/// after `timeout`. For effects that arrive asynchronously (a consumer, a relay, a sweeper):
/// waiting on the effect itself, never on a fixed sleep.
pub async fn eventually<T, F, Fut>(what: &str, timeout: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
