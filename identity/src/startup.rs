//! Builds the identity service from its config: keys, resources, state and router. `main` and the
//! tests both go through `Application::build`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use shared::auth::Ed25519KeyPair;
use shared::redis::RedisPool;
use shared::server::ShutdownHandle;
use shared::{RunningService, ServiceBuilder};
use sqlx::PgPool;

use crate::config::{IdentityConfig, MailerKind};
use crate::mail::{FileMailer, LogMailer, Mailer};
use crate::password::PasswordHasher;
use crate::ratelimit::{LoginLimiter, MailLimiter};
use crate::tokens::JwtSigner;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub redis: RedisPool,
    pub config: Arc<IdentityConfig>,
    pub signer: Arc<JwtSigner>,
    pub hasher: PasswordHasher,
    pub mailer: Arc<dyn Mailer>,
    pub limiter: LoginLimiter,
    pub mail_limiter: MailLimiter,
}

pub fn load_keys(config: &IdentityConfig) -> anyhow::Result<Ed25519KeyPair> {
    let pem = match (&config.jwt_private_key_pem, &config.jwt_private_key_path) {
        (Some(pem), _) => pem.expose().to_owned(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("jwt_private_key_path '{path}': {e}"))?,
        (None, None) => anyhow::bail!("no signing key configured"),
    };
    Ed25519KeyPair::from_private_pem(&pem)
        .map_err(|e| anyhow::anyhow!("the signing key is not an Ed25519 PKCS#8 PEM: {e}"))
}

pub struct Application {
    service: RunningService,
    pub state: AppState,
}

impl Application {
    pub async fn build(config: IdentityConfig) -> anyhow::Result<Self> {
        config.validate()?;
        let keys = load_keys(&config)?;
        let signer = Arc::new(JwtSigner::new(
            &keys,
            &config.common.jwt_issuer,
            &config.common.jwt_audience,
            config.access_token_ttl_secs,
        ));
        let infra = ServiceBuilder::new("identity", &config.common)
            .postgres(&crate::MIGRATOR)
            .redis()
            .jwt_verifier(Arc::new(signer.verifier()))
            .connect()
            .await?;
        let mailer: Arc<dyn Mailer> = match config.mailer {
            MailerKind::File => Arc::new(FileMailer::new(&config.mail_dir, &config.mail_from)?),
            MailerKind::Log => Arc::new(LogMailer),
        };
        let redis = infra.redis()?;
        let state = AppState {
            db: infra.db()?,
            limiter: LoginLimiter::new(
                redis.clone(),
                config.login_max_failures_per_account,
                config.login_max_failures_per_ip,
                config.login_failure_window_secs,
            ),
            mail_limiter: MailLimiter::new(
                redis.clone(),
                config.mail_requests_per_address,
                config.mail_requests_per_client,
                config.mail_request_window_secs,
            ),
            redis,
            hasher: PasswordHasher::new(
                config.argon2_memory_kib,
                config.argon2_iterations,
                config.argon2_parallelism,
            )
            .await?
            .with_limits(
                match config.argon2_max_concurrent {
                    0 => crate::password::default_workers(),
                    n => n as usize,
                },
                config.argon2_max_queue as usize,
            ),
            signer,
            mailer,
            config: Arc::new(config),
        };
        let service = infra.serve(
            crate::routes::router(state.clone()),
            crate::routes::openapi(),
        )?;
        tracing::info!(addr = %service.addr(), "identity listening");
        Ok(Self { service, state })
    }

    pub fn addr(&self) -> SocketAddr {
        self.service.addr()
    }

    pub fn router(&self) -> axum::Router {
        self.service.router()
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.service.shutdown_handle()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.service.run_until_stopped().await
    }
}

/// The client's address: the socket peer, or the first `X-Forwarded-For` hop when configured to
/// trust a proxy in front.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if state.config.trust_forwarded_for {
            let forwarded = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse::<IpAddr>().ok());
            if forwarded.is_some() {
                return Ok(ClientIp(forwarded));
            }
        }
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        ))
    }
}
