//! Builds the identity service from its config: keys, resources, state and router. `main` and the
//! tests both go through `Application::build`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use shared::auth::Ed25519KeyPair;
use shared::redis::RedisPool;
use shared::server::ShutdownHandle;
use shared::{RunningService, ServiceBuilder};
use sqlx::PgPool;

use crate::config::{IdentityConfig, MailerKind};
use crate::mail::{FileMailer, LogMailer, Mailer, SmtpMailer};
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
    /// Work done after answering (mail of the enumeration-sensitive endpoints).
    pub background: crate::background::Background,
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
            MailerKind::Smtp => Arc::new(SmtpMailer::new(
                &config.smtp_host,
                config.smtp_port,
                config
                    .smtp_username
                    .clone()
                    .zip(config.smtp_password.as_ref().map(|p| p.expose().to_owned())),
                &config.mail_from,
            )?),
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
            background: crate::background::Background::default(),
            hasher: PasswordHasher::new(
                config.argon2_memory_kib,
                config.argon2_iterations,
                config.argon2_parallelism,
                match config.argon2_max_concurrent {
                    0 => crate::password::default_workers(),
                    n => n as usize,
                },
                config.argon2_max_queue as usize,
            )
            .await?,
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

    /// Serve until stopped, then give the work still running after its answers (mail on its
    /// way) the same grace as in-flight requests before returning.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let background = self.state.background.clone();
        let grace = std::time::Duration::from_secs(self.state.config.common.shutdown_grace_secs);
        let result = self.service.run_until_stopped().await;
        if tokio::time::timeout(grace, background.idle())
            .await
            .is_err()
        {
            tracing::warn!(
                unfinished = background.running(),
                "stopping with background work unfinished (mail not sent)"
            );
        }
        result
    }
}

/// The client's address, for throttles: the socket peer, or, behind `trusted_proxy_hops` proxies
/// of ours, the address the outermost of them saw (docs/adr/009).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(ClientIp(client_ip(
            &parts.headers,
            peer,
            state.config.trusted_proxy_hops,
        )))
    }
}

/// Each proxy appends the address it received the request from to `X-Forwarded-For`, so only the
/// rightmost `hops` entries were written by proxies we trust; whatever is left of them came from
/// the client and may be forged. The entry `hops` from the right is the client as the outermost
/// trusted proxy saw it. With fewer entries than hops the leftmost is used (each was still written
/// by one of our proxies); with no usable entry, the peer.
pub fn client_ip(headers: &HeaderMap, peer: Option<IpAddr>, hops: u32) -> Option<IpAddr> {
    if hops == 0 {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let index = entries.len().saturating_sub(hops as usize);
    entries
        .get(index)
        .and_then(|e| {
            e.parse::<IpAddr>()
                .ok()
                .or_else(|| e.parse::<SocketAddr>().ok().map(|a| a.ip()))
        })
        .or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn forwarded(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", HeaderValue::from_static(v));
        }
        headers
    }

    const PEER: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)));

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn with_no_trusted_proxy_the_peer_is_the_client_whatever_the_header_says() {
        assert_eq!(client_ip(&forwarded(&["203.0.113.7"]), PEER, 0), PEER);
    }

    #[test]
    fn behind_one_proxy_the_rightmost_entry_is_the_client_and_forged_ones_are_skipped() {
        let h = forwarded(&["1.2.3.4, 5.6.7.8, 203.0.113.7"]);
        assert_eq!(client_ip(&h, PEER, 1), ip("203.0.113.7"));
    }

    #[test]
    fn behind_two_proxies_the_second_entry_from_the_right_is_the_client() {
        // The client forged 1.2.3.4; the outer proxy appended the client, the inner one the outer.
        let h = forwarded(&["1.2.3.4, 203.0.113.7", "192.0.2.10"]);
        assert_eq!(client_ip(&h, PEER, 2), ip("203.0.113.7"));
    }

    #[test]
    fn a_short_or_missing_or_unreadable_header_falls_back_safely() {
        assert_eq!(
            client_ip(&forwarded(&["203.0.113.7"]), PEER, 2),
            ip("203.0.113.7")
        );
        assert_eq!(client_ip(&HeaderMap::new(), PEER, 1), PEER);
        assert_eq!(client_ip(&forwarded(&["unknown"]), PEER, 1), PEER);
        assert_eq!(
            client_ip(&forwarded(&["[2001:db8::1]:443"]), PEER, 1),
            ip("2001:db8::1")
        );
    }
}
