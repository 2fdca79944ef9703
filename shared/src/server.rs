//! The service bootstrap. A service declares what it needs (Postgres with its migrations, Redis, the
//! token verifier; later the broker pieces), `connect`s, builds its router on the resources, and
//! `serve`s. Every service gets the same outer stack: request ids, a span per request, metrics,
//! CORS, a body-size limit, panic catching, health, `/metrics`, `/openapi.json`, JSON 404/405, and
//! graceful shutdown. The listener is bound in `connect`, so a test can ask for `127.0.0.1:0` and
//! read the real address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, Response};
use axum::routing::get;
use axum::{Extension, Router};
use sqlx::migrate::Migrator;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::auth::JwtVerifier;
use crate::config::CommonConfig;
use crate::error::ApiError;
use crate::health::HealthChecks;
use crate::redis::RedisPool;

pub struct ServiceBuilder {
    name: &'static str,
    config: CommonConfig,
    /// An error here (platform and service migrations that collide) is returned by `connect`.
    migrator: Option<anyhow::Result<Migrator>>,
    redis: bool,
    kafka: bool,
    verifier: Option<Arc<JwtVerifier>>,
}

impl ServiceBuilder {
    pub fn new(name: &'static str, config: &CommonConfig) -> Self {
        Self {
            name,
            config: config.clone(),
            migrator: None,
            redis: false,
            kafka: false,
            verifier: None,
        }
    }

    /// Connect to the service's database and apply its embedded migrations.
    pub fn postgres(mut self, migrator: &'static Migrator) -> Self {
        self.migrator = Some(Ok(Migrator {
            migrations: migrator.migrations.clone(),
            ..Migrator::DEFAULT
        }));
        self
    }

    /// As `postgres`, plus the platform tables (outbox, inbox) for a service that produces or
    /// consumes events.
    pub fn postgres_with_events(mut self, migrator: &'static Migrator) -> Self {
        self.migrator = Some(crate::db::service_migrator(migrator));
        self
    }

    /// The broker: saga topics (and DLQs) are created at start-up and readiness checks it.
    pub fn kafka(mut self) -> Self {
        self.kafka = true;
        self
    }

    pub fn redis(mut self) -> Self {
        self.redis = true;
        self
    }

    /// Use this verifier (identity derives it from its own key). Other services get one from
    /// `jwt_public_key_path`.
    pub fn jwt_verifier(mut self, verifier: Arc<JwtVerifier>) -> Self {
        self.verifier = Some(verifier);
        self
    }

    pub async fn connect(self) -> anyhow::Result<Infra> {
        let mut checks = HealthChecks::default();
        let db = match self.migrator.transpose()? {
            Some(migrator) => {
                let pool = crate::db::connect(&self.config).await?;
                crate::db::migrate(&pool, &migrator).await?;
                let p = pool.clone();
                checks.add("postgres", move || {
                    let p = p.clone();
                    async move {
                        sqlx::query_scalar::<_, i32>("SELECT 1")
                            .fetch_one(&p)
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    }
                });
                Some(pool)
            }
            None => None,
        };
        let redis = if self.redis {
            let r = RedisPool::connect(&self.config).await?;
            let rc = r.clone();
            checks.add("redis", move || {
                let rc = rc.clone();
                async move { rc.ping().await.map_err(|e| e.to_string()) }
            });
            Some(r)
        } else {
            None
        };
        if self.kafka {
            let brokers = self.config.kafka_brokers.clone();
            let names: Vec<String> = crate::events::topics::ALL
                .iter()
                .map(|t| format!("{}{t}", self.config.kafka_topic_prefix))
                .collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            crate::kafka::ensure_topics(&brokers, &names, self.config.kafka_topic_partitions)
                .await?;
            // A client that only asks for metadata: a plain consumer has no polling thread (an
            // idle producer's costs ~0.5% of a core, ADR 014), and it never joins a group.
            let client: Arc<rdkafka::consumer::BaseConsumer> = Arc::new(
                rdkafka::ClientConfig::new()
                    .set("bootstrap.servers", &brokers)
                    .set("client.id", format!("{}-health", self.name))
                    .create()
                    .map_err(|e| anyhow::anyhow!("Kafka health client for {brokers}: {e}"))?,
            );
            checks.add("kafka", move || {
                let client = client.clone();
                async move {
                    tokio::task::spawn_blocking(move || {
                        use rdkafka::consumer::Consumer;
                        // Serve what librdkafka queued since the last check (its logs and
                        // errors), so nothing piles up while the broker is away.
                        while client.poll(Duration::ZERO).is_some() {}
                        client
                            .fetch_metadata(None, Duration::from_secs(2))
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    })
                    .await
                    .map_err(|e| e.to_string())?
                }
            });
        }
        let verifier = match (self.verifier, &self.config.jwt_public_key_path) {
            (Some(v), _) => Some(v),
            (None, Some(path)) => {
                let pem = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("jwt_public_key_path '{path}': {e}"))?;
                Some(Arc::new(JwtVerifier::from_public_pem(
                    &pem,
                    &self.config.jwt_issuer,
                    &self.config.jwt_audience,
                )?))
            }
            (None, None) => None,
        };
        let bind = format!("{}:{}", self.config.host, self.config.port);
        let listener = TcpListener::bind(&bind)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {bind}: {e}"))?;
        Ok(Infra {
            name: self.name,
            config: self.config,
            db,
            redis,
            verifier,
            checks,
            listener,
            background: Vec::new(),
        })
    }
}

/// The connected resources of a service, before its router exists.
pub struct Infra {
    name: &'static str,
    config: CommonConfig,
    db: Option<PgPool>,
    redis: Option<RedisPool>,
    verifier: Option<Arc<JwtVerifier>>,
    checks: HealthChecks,
    listener: TcpListener,
    background: Vec<Background>,
}

/// A task that runs beside the HTTP server (outbox relay, consumers) and stops with it.
type Background = Box<dyn FnOnce(watch::Receiver<bool>) -> tokio::task::JoinHandle<()> + Send>;

impl Infra {
    pub fn db(&self) -> anyhow::Result<PgPool> {
        self.db
            .clone()
            .ok_or_else(|| anyhow::anyhow!("{}: Postgres was not declared", self.name))
    }

    pub fn redis(&self) -> anyhow::Result<RedisPool> {
        self.redis
            .clone()
            .ok_or_else(|| anyhow::anyhow!("{}: Redis was not declared", self.name))
    }

    pub fn addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Add a readiness check for a dependency the builder does not know about.
    pub fn health_checks(&mut self) -> &mut HealthChecks {
        &mut self.checks
    }

    /// The names on the broker of the logical topics `topics` (the configured prefix added).
    pub fn physical_topics(&self, topics: &[&str]) -> Vec<String> {
        topics
            .iter()
            .map(|t| format!("{}{t}", self.config.kafka_topic_prefix))
            .collect()
    }

    /// Publish this service's outbox (needs `postgres_with_events` and `kafka`).
    pub fn outbox_relay(&mut self, mut config: crate::outbox::RelayConfig) -> anyhow::Result<()> {
        if config.topic_prefix.is_empty() {
            config.topic_prefix = self.config.kafka_topic_prefix.clone();
        }
        let pool = self.db()?;
        let (brokers, client_id, idempotent) = (
            self.config.kafka_brokers.clone(),
            format!("{}-relay", self.name),
            self.config.kafka_idempotent_producer,
        );
        let make = move || {
            crate::kafka::producer_with(
                &brokers,
                &client_id,
                crate::kafka::DELIVERY_TIMEOUT,
                idempotent,
            )
        };
        let producer = make()?;
        let factory: crate::outbox::ProducerFactory = std::sync::Arc::new(make);
        let relay = crate::outbox::OutboxRelay::new(self.name, pool, producer, config)
            .with_producer_factory(factory);
        self.background
            .push(Box::new(move |stop| tokio::spawn(relay.run(stop))));
        Ok(())
    }

    /// Consume `topics` as consumer group `group` with an inbox in this service's database. Both
    /// names get the configured topic prefix, so stacks sharing a broker never share a group.
    pub fn consume(
        &mut self,
        group: &str,
        topics: &[&str],
        handler: Arc<dyn crate::consumer::EventHandler>,
    ) -> anyhow::Result<()> {
        let topics = self.physical_topics(topics);
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        let group = format!("{}{group}", self.config.kafka_topic_prefix);
        let mut config =
            crate::consumer::ConsumerConfig::new(&self.config.kafka_brokers, &group, &topics);
        config.fetch_wait = std::time::Duration::from_millis(self.config.kafka_fetch_wait_ms);
        config.doze = self.config.consumer_doze();
        let consumer = crate::consumer::EventConsumer::postgres(config, self.db()?, handler)?;
        consumer.health().register(&mut self.checks);
        self.background
            .push(Box::new(move |stop| tokio::spawn(consumer.run(stop))));
        Ok(())
    }

    /// Consume with a Redis de-dup instead (for Redis-only services).
    pub fn consume_redis(
        &mut self,
        group: &str,
        topics: &[&str],
        handler: Arc<dyn crate::consumer::RedisEventHandler>,
    ) -> anyhow::Result<()> {
        let redis = self.redis()?;
        let topics = self.physical_topics(topics);
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        let group = format!("{}{group}", self.config.kafka_topic_prefix);
        let mut config =
            crate::consumer::ConsumerConfig::new(&self.config.kafka_brokers, &group, &topics);
        config.fetch_wait = std::time::Duration::from_millis(self.config.kafka_fetch_wait_ms);
        config.doze = self.config.consumer_doze();
        let prefix = redis.key(&[]);
        let consumer =
            crate::consumer::EventConsumer::redis(config, redis.conn(), &prefix, handler)?;
        consumer.health().register(&mut self.checks);
        self.background
            .push(Box::new(move |stop| tokio::spawn(consumer.run(stop))));
        Ok(())
    }

    /// Run a service's own background job (a sweeper, a scheduler) beside the server: `job` gets
    /// the shutdown signal, starts when the service is served and is awaited on shutdown within the
    /// grace period, like the relay and the consumers.
    pub fn run_in_background<F, Fut>(&mut self, job: F)
    where
        F: FnOnce(watch::Receiver<bool>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.background
            .push(Box::new(move |stop| tokio::spawn(job(stop))));
    }

    /// Wrap the service's API router in the common stack.
    pub fn serve(
        self,
        api: Router,
        openapi: utoipa::openapi::OpenApi,
    ) -> anyhow::Result<RunningService> {
        let addr = self.listener.local_addr()?;
        let checks = self.checks.clone();
        let openapi = Arc::new(openapi);
        let mut router = api
            .route("/health/live", get(crate::health::live))
            .route(
                "/health/ready",
                get(move || crate::health::ready(checks.clone())),
            )
            .route("/metrics", get(crate::metrics::render))
            .route(
                "/openapi.json",
                get(move || {
                    let doc = openapi.clone();
                    async move { axum::Json(doc.as_ref().clone()) }
                }),
            )
            .fallback(crate::error::route_not_found)
            .method_not_allowed_fallback(crate::error::method_not_allowed);
        if let Some(v) = &self.verifier {
            router = router.layer(Extension(v.clone()));
            // Tokens voided by identity (deactivation, role or password change, closed account) are
            // refused within a second (docs/adr/010).
            let revocations =
                crate::auth::TokenRevocations::new(&self.config, self.redis.as_ref())?;
            router = router.layer(Extension(Arc::new(revocations)));
        }
        let name = self.name;
        let router = router
            .layer(DefaultBodyLimit::max(self.config.body_limit_bytes))
            // Inside CORS, metrics, tracing and the request id, so a panicked request's 500 gets
            // CORS headers, is counted and logged like any answer, and its body carries the id.
            .layer(CatchPanicLayer::custom(
                |_panic: Box<dyn std::any::Any + Send>| {
                    use axum::response::IntoResponse;
                    ApiError::internal(anyhow::anyhow!("handler panicked")).into_response()
                },
            ))
            .layer(cors(&self.config.cors_allowed_origins))
            .layer(axum::middleware::from_fn(crate::metrics::track))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(move |req: &Request| {
                        let path = req
                            .extensions()
                            .get::<MatchedPath>()
                            .map(|p| p.as_str())
                            .unwrap_or("unmatched");
                        tracing::info_span!(
                            "http_request",
                            service = name,
                            method = %req.method(),
                            path = %path,
                            request_id = %crate::request_id::current().unwrap_or_default(),
                            status = tracing::field::Empty,
                        )
                    })
                    .on_response(|resp: &Response<_>, latency: Duration, span: &Span| {
                        let status = resp.status().as_u16();
                        span.record("status", status);
                        let latency_ms = latency.as_secs_f64() * 1000.0;
                        // Failures always leave a line; a success only at DEBUG: one INFO line per
                        // request cost ~40% of a trivial route's rate (docs/benchmarks.md), and the
                        // metrics already count every request by route and status.
                        match status {
                            // A 503 is shed load or a busy dependency: its error body already
                            // logged it at WARN (shared::error), so no second line here.
                            503 => tracing::debug!(status, latency_ms, "request finished"),
                            500.. => tracing::error!(status, latency_ms, "request finished"),
                            400.. => tracing::info!(status, latency_ms, "request finished"),
                            _ => tracing::debug!(status, latency_ms, "request finished"),
                        }
                    }),
            )
            .layer(axum::middleware::from_fn(crate::request_id::middleware));
        // Touch the recorder so `/metrics` has content from the first scrape.
        let _ = crate::metrics::handle();
        let (tx, rx) = watch::channel(false);
        // Background work starts now and stops when shutdown is requested.
        let tasks = self
            .background
            .into_iter()
            .map(|start| start(rx.clone()))
            .collect();
        Ok(RunningService {
            addr,
            router,
            listener: self.listener,
            shutdown_tx: Arc::new(tx),
            shutdown_rx: rx,
            grace: Duration::from_secs(self.config.shutdown_grace_secs),
            tasks,
        })
    }
}

fn cors(origins: &[String]) -> CorsLayer {
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        )
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            HeaderName::from_static("x-request-id"),
            axum::http::header::RETRY_AFTER,
        ])
        .max_age(Duration::from_secs(3600))
}

/// Stops a running service from elsewhere (tests, or a second signal source).
#[derive(Clone)]
pub struct ShutdownHandle(Arc<watch::Sender<bool>>);

impl ShutdownHandle {
    pub fn shutdown(&self) {
        let _ = self.0.send(true);
    }
}

pub struct RunningService {
    addr: SocketAddr,
    router: Router,
    listener: TcpListener,
    shutdown_tx: Arc<watch::Sender<bool>>,
    shutdown_rx: watch::Receiver<bool>,
    grace: Duration,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningService {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The full router, for in-process `oneshot` tests.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shutdown_tx.clone())
    }

    /// Serve until SIGTERM, Ctrl-C or the shutdown handle; then stop accepting, let in-flight
    /// requests finish for up to the grace period, and return.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let tx = self.shutdown_tx.clone();
        tokio::spawn(async move {
            os_signal().await;
            let _ = tx.send(true);
        });
        let mut stop = self.shutdown_rx.clone();
        let mut stop_for_grace = self.shutdown_rx;
        let server = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
            tracing::info!("shutdown requested: no longer accepting connections");
        });
        let grace = self.grace;
        let tasks = self.tasks;
        let result = tokio::select! {
            result = server => result.map_err(anyhow::Error::from),
            _ = async move {
                let _ = stop_for_grace.wait_for(|s| *s).await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!("grace period elapsed with requests still in flight");
                Ok(())
            }
        };
        // Consumers finish the message in hand and commit; the relay finishes its round.
        let _ = self.shutdown_tx.send(true);
        if tokio::time::timeout(grace, futures::future::join_all(tasks))
            .await
            .is_err()
        {
            tracing::warn!("background tasks did not stop within the grace period");
        }
        result
    }
}

async fn os_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Adds the `bearer` (JWT) security scheme that the services' `security(("bearer" = []))`
/// annotations refer to: `#[openapi(modifiers(&shared::server::BearerAuth))]`.
pub struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    async fn service(api: Router) -> RunningService {
        let mut config = CommonConfig::defaults(crate::config::Profile::Test, 0, "unused");
        config.body_limit_bytes = 2048;
        ServiceBuilder::new("test", &config)
            .connect()
            .await
            .unwrap()
            .serve(api, utoipa::openapi::OpenApi::default())
            .unwrap()
    }

    async fn json(resp: axum::response::Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_with_the_error_body_and_the_service_lives_on() {
        async fn boom() -> &'static str {
            panic!("handler bug")
        }
        let svc = service(Router::new().route("/boom", get(boom))).await;
        let resp = svc
            .router()
            .oneshot(
                Request::get("/boom")
                    .header("x-request-id", "req-1")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(resp.headers()["x-request-id"], "req-1");
        let body = json(resp).await;
        assert_eq!(body["error"]["code"], "INTERNAL_ERROR");
        assert_eq!(body["error"]["request_id"], "req-1");
        assert!(!body.to_string().contains("handler bug"));
        let live = svc
            .router()
            .oneshot(Request::get("/health/live").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(live.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_service_whose_migrations_reuse_a_platform_version_does_not_start() {
        use sqlx::migrate::{Migration, MigrationType};
        let platform = crate::db::PLATFORM_MIGRATOR.iter().next().unwrap();
        let colliding: &'static Migrator = Box::leak(Box::new(Migrator {
            migrations: std::borrow::Cow::Owned(vec![Migration::new(
                platform.version,
                "orders".into(),
                MigrationType::Simple,
                "SELECT 1".into(),
                false,
            )]),
            ..Migrator::DEFAULT
        }));
        let config = CommonConfig::defaults(crate::config::Profile::Test, 0, "unused");
        let Err(err) = ServiceBuilder::new("test", &config)
            .postgres_with_events(colliding)
            .connect()
            .await
        else {
            panic!("a service with colliding migrations started");
        };
        assert!(
            err.to_string().contains(&format!(
                "migration version {} is used twice",
                platform.version
            )),
            "{err}"
        );
    }

    /// `http_requests_total` for one route and status, summed over methods, from the process-wide
    /// recorder (other tests add to other routes, so callers compare before and after).
    fn requests_counted(path: &str, status: u16) -> u64 {
        let text = crate::metrics::handle().expect("recorder").render();
        let path = format!("path=\"{path}\"");
        let status = format!("status=\"{status}\"");
        text.lines()
            .filter(|l| l.starts_with("http_requests_total{"))
            .filter(|l| l.contains(&path) && l.contains(&status))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    }

    #[tokio::test]
    async fn a_panicked_request_is_counted_as_a_500_of_its_route() {
        async fn boom() -> &'static str {
            panic!("handler bug")
        }
        let svc = service(Router::new().route("/panic-counted", get(boom))).await;
        let before = requests_counted("/panic-counted", 500);
        let resp = svc
            .router()
            .oneshot(Request::get("/panic-counted").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(requests_counted("/panic-counted", 500) - before, 1);
    }

    #[tokio::test]
    async fn graceful_shutdown_lets_the_in_flight_request_finish_then_stops() {
        let (entered_tx, entered_rx) = tokio::sync::oneshot::channel::<()>();
        let entered = Arc::new(std::sync::Mutex::new(Some(entered_tx)));
        let slow = move || {
            let entered = entered.clone();
            async move {
                if let Some(tx) = entered.lock().ok().and_then(|mut g| g.take()) {
                    let _ = tx.send(());
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                "done"
            }
        };
        let svc = service(Router::new().route("/slow", get(slow))).await;
        let addr = svc.addr();
        let handle = svc.shutdown_handle();
        let server = tokio::spawn(svc.run_until_stopped());
        let in_flight = tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            stream
                .write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut out = String::new();
            stream.read_to_string(&mut out).await.unwrap();
            out
        });
        entered_rx.await.unwrap();
        handle.shutdown();
        let answer = in_flight.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("done"), "{answer}");
        server.await.unwrap().unwrap();
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "no longer accepting connections"
        );
    }

    #[tokio::test]
    async fn the_body_limit_applies_to_every_route_and_404_and_405_keep_their_answers() {
        async fn echo(
            crate::extract::AppJson(v): crate::extract::AppJson<serde_json::Value>,
        ) -> String {
            v.to_string()
        }
        let api = Router::new()
            .route("/echo", axum::routing::post(echo))
            .route("/things/{id}", axum::routing::put(echo).patch(echo))
            .nest(
                "/api/v1",
                Router::new().route("/orders", axum::routing::post(echo)),
            );
        let svc = service(api).await;
        let send = |method: Method, path: &'static str, body: String| {
            let router = svc.router();
            async move {
                let resp = router
                    .oneshot(
                        Request::builder()
                            .method(method)
                            .uri(path)
                            .header("content-type", "application/json")
                            .body(Body::from(body))
                            .unwrap(),
                    )
                    .await
                    .unwrap();
                let status = resp.status();
                (status, json(resp).await)
            }
        };
        let big = format!("{{\"x\": \"{}\"}}", "a".repeat(4096));
        let small = r#"{"x": "a"}"#.to_string();
        let routes = [
            (Method::POST, "/echo"),
            (Method::PUT, "/things/1"),
            (Method::PATCH, "/things/1"),
            (Method::POST, "/api/v1/orders"),
        ];
        for (method, path) in routes {
            let (status, body) = send(method.clone(), path, big.clone()).await;
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{method} {path}");
            assert_eq!(
                body["error"]["code"], "PAYLOAD_TOO_LARGE",
                "{method} {path}"
            );
            let (status, body) = send(method.clone(), path, small.clone()).await;
            assert_eq!(status, StatusCode::OK, "{method} {path} under the limit");
            assert_eq!(body["x"], "a", "{method} {path} under the limit");
        }
        let (status, body) = send(Method::POST, "/nowhere", big.clone()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "ROUTE_NOT_FOUND");
        let (status, body) = send(Method::DELETE, "/things/1", big).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["error"]["code"], "METHOD_NOT_ALLOWED");
    }
}
