//! `TestApp`: a real identity service on `127.0.0.1:0` with its own database (copied from a
//! migrated template), its own Redis key prefix and its own mail folder.

use std::path::PathBuf;

use identity::{AppState, Application, IdentityConfig};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use shared::config::{Profile, Secret};
use shared::server::ShutdownHandle;
use shared::test_utils::{self, TestDb};

pub const PASSWORD: &str = "Corr3ct-horse!";

pub struct TestApp {
    pub http: test_utils::Http,
    pub state: AppState,
    pub mail_dir: PathBuf,
    /// The running service; `take` it to await its end after `stop`.
    pub run: std::sync::Mutex<Option<tokio::task::JoinHandle<anyhow::Result<()>>>>,
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
        let _ = std::fs::remove_dir_all(&self.mail_dir);
    }
}

pub struct Session {
    pub access: String,
    pub refresh: String,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(customise: impl FnOnce(&mut IdentityConfig)) -> Self {
        shared::test_utils::init_logs();
        let db = TestDb::create("identity", &identity::MIGRATOR)
            .await
            .expect("test database");
        let mail_dir = std::env::temp_dir()
            .join("koupang-test-mail")
            .join(uuid::Uuid::now_v7().simple().to_string());
        let mut config = IdentityConfig::defaults(Profile::Test);
        config.common.port = 0;
        config.common.database_url = Secret::new(db.url.clone());
        config.common.database_max_connections = 5;
        config.common.redis_url = Secret::new(test_utils::redis_url());
        config.common.redis_prefix = test_utils::unique_redis_prefix();
        config.common.shutdown_grace_secs = 1;
        config.jwt_private_key_pem = Some(Secret::new(test_utils::test_keys().private_pem()));
        config.mail_dir = mail_dir.display().to_string();
        // Tests speak for clients behind one proxy through X-Forwarded-For.
        config.trusted_proxy_hops = 1;
        customise(&mut config);
        let app = Application::build(config).await.expect("identity starts");
        let base = format!("http://{}", app.addr());
        let state = app.state.clone();
        let shutdown = app.shutdown_handle();
        let run = tokio::spawn(app.run_until_stopped());
        Self {
            http: test_utils::Http::new(base),
            state,
            mail_dir,
            run: std::sync::Mutex::new(Some(run)),
            shutdown,
            _db: db,
        }
    }

    /// Ask the service to stop, as a signal would.
    pub fn stop(&self) {
        self.shutdown.shutdown();
    }

    pub async fn register(&self, username: &str, role: &str) -> Response {
        self.post(
            "/api/v1/users/register",
            json!({
                "username": username,
                "email": format!("{}@example.com", username.to_lowercase()),
                "password": PASSWORD,
                "role": role,
            }),
        )
        .await
    }

    /// Register and return the user's JSON.
    pub async fn user(&self, username: &str, role: &str) -> Value {
        let resp = self.register(username, role).await;
        assert_eq!(resp.status(), StatusCode::CREATED, "registering {username}");
        resp.json().await.unwrap()
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post(
            "/api/v1/users/refresh",
            json!({ "refresh_token": refresh_token }),
        )
        .await
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post(
            "/api/v1/users/login",
            json!({"username": username, "password": password}),
        )
        .await
    }

    pub async fn login_ok(&self, username: &str, password: &str) -> Session {
        let resp = self.login(username, password).await;
        assert_eq!(resp.status(), StatusCode::OK, "login of {username}");
        let body: Value = resp.json().await.unwrap();
        Session {
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// A registered, logged-in user: (user JSON, session).
    pub async fn signed_in(&self, username: &str, role: &str) -> (Value, Session) {
        let user = self.user(username, role).await;
        let session = self.login_ok(username, PASSWORD).await;
        (user, session)
    }

    /// An admin made the way operators make one (never through the API), logged in.
    pub async fn admin(&self, username: &str) -> (Value, Session) {
        let user = self.user(username, "BUYER").await;
        sqlx::query("UPDATE users SET role = 'ADMIN' WHERE id = $1")
            .bind(uuid::Uuid::parse_str(user["id"].as_str().unwrap()).unwrap())
            .execute(&self.state.db)
            .await
            .unwrap();
        let session = self.login_ok(username, PASSWORD).await;
        (user, session)
    }

    /// Once the work identity does after answering (the mail of forgot-password and
    /// resend-verification) is all done; fails after 10 s.
    pub async fn settled(&self) {
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            self.state.background.idle(),
        )
        .await
        .expect("identity's background work finished");
    }

    /// Every mail sent to `to`, oldest first.
    pub fn mails_to(&self, to: &str) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(&self.mail_dir) else {
            return vec![];
        };
        let mut files: Vec<PathBuf> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        // File names are UUIDv7s: name order is send order.
        files.sort();
        files
            .into_iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .filter(|text| text.lines().any(|l| l == format!("To: {to}")))
            .collect()
    }

    /// Verify `address` with the token of the latest mail sent to it.
    pub async fn verify_email(&self, address: &str) {
        let token = self.token_from_latest_mail(address);
        let resp = self
            .post("/api/v1/users/verify-email", json!({ "token": token }))
            .await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT, "verifying {address}");
    }

    /// The token in the latest mail to `to`.
    pub fn token_from_latest_mail(&self, to: &str) -> String {
        let mails = self.mails_to(to);
        let mail = mails.last().unwrap_or_else(|| panic!("no mail to {to}"));
        mail.lines()
            .find_map(|l| l.strip_prefix("token: "))
            .unwrap_or_else(|| panic!("no token in mail: {mail}"))
            .to_owned()
    }
}

pub use shared::test_utils::assert_error;
