//! Access-token verification for every service. Identity signs short-lived EdDSA (Ed25519) JWTs with
//! a private key only it holds; every service verifies them here with the public key, so no other
//! service can mint a token. `AuthUser` is the extractor; role guards sit on it.
//!
//! Tokens live 15 minutes, so logout-all, deactivation, a role or password change must also void
//! the tokens already out: identity writes a per-user mark "tokens issued up to T are void" to
//! Redis (`revoke_access_tokens`), and `AuthUser` consults it through `TokenRevocations`, with a
//! cache of at most one second (docs/adr/010).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;

/// A user's role. `ADMIN` can never be chosen at registration or by the user themself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    Buyer,
    Seller,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Buyer => "BUYER",
            Role::Seller => "SELLER",
            Role::Admin => "ADMIN",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "BUYER" => Some(Role::Buyer),
            "SELLER" => Some(Role::Seller),
            "ADMIN" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The claims of an access token (contract §3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: Uuid,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    pub jti: Uuid,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("token expired")]
    Expired,
    #[error("invalid token")]
    Invalid,
    #[error("token revoked")]
    Revoked,
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing => ApiError::unauthorized(
                "UNAUTHENTICATED",
                "an `Authorization: Bearer <token>` header is required",
            ),
            AuthError::Expired => {
                ApiError::unauthorized("TOKEN_EXPIRED", "the access token has expired")
            }
            AuthError::Invalid => {
                ApiError::unauthorized("INVALID_TOKEN", "the access token is not valid")
            }
            AuthError::Revoked => ApiError::unauthorized(
                "TOKEN_REVOKED",
                "the access token was revoked (logout, deactivation, role or password change); \
                 log in again or refresh",
            ),
        }
    }
}

/// Verifies access tokens with identity's public key.
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier").finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// From the raw 32-byte Ed25519 public key.
    pub fn from_raw_public_key(raw: &[u8], issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Self {
            key: DecodingKey::from_ed_der(raw),
            validation,
        }
    }

    /// From a `-----BEGIN PUBLIC KEY-----` PEM (SubjectPublicKeyInfo, Ed25519).
    pub fn from_public_pem(pem: &str, issuer: &str, audience: &str) -> anyhow::Result<Self> {
        let raw = raw_public_key_from_pem(pem)?;
        Ok(Self::from_raw_public_key(&raw, issuer, audience))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        // Only EdDSA is accepted: `alg: none`, HS256 with the public key as secret, etc. all fail here.
        jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid,
            })
    }
}

/// DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw key is the 32 bytes after it.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

fn pem_body(pem: &str, label: &str) -> anyhow::Result<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem
        .find(&begin)
        .ok_or_else(|| anyhow::anyhow!("not a PEM '{label}'"))?
        + begin.len();
    let stop = pem[start..]
        .find(&end)
        .ok_or_else(|| anyhow::anyhow!("PEM '{label}' has no end line"))?
        + start;
    let b64: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    Ok(STANDARD.decode(b64)?)
}

fn to_pem(der: &[u8], label: &str) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The raw Ed25519 key inside a public-key PEM.
pub fn raw_public_key_from_pem(pem: &str) -> anyhow::Result<Vec<u8>> {
    let der = pem_body(pem, "PUBLIC KEY")?;
    if der.len() != 44 || der[..12] != ED25519_SPKI_PREFIX {
        anyhow::bail!("the public key is not an Ed25519 key");
    }
    Ok(der[12..].to_vec())
}

/// A public-key PEM for a raw Ed25519 key.
pub fn public_pem_from_raw(raw: &[u8]) -> String {
    let mut der = ED25519_SPKI_PREFIX.to_vec();
    der.extend_from_slice(raw);
    to_pem(&der, "PUBLIC KEY")
}

/// An Ed25519 signing key pair as PKCS#8 DER plus its raw public key.
pub struct Ed25519KeyPair {
    pub pkcs8_der: Vec<u8>,
    pub public_raw: Vec<u8>,
}

impl Ed25519KeyPair {
    pub fn generate() -> anyhow::Result<Self> {
        let rng = ring::rand::SystemRandom::new();
        let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| anyhow::anyhow!("could not generate an Ed25519 key"))?;
        Self::from_pkcs8_der(doc.as_ref())
    }

    pub fn from_pkcs8_der(der: &[u8]) -> anyhow::Result<Self> {
        use ring::signature::KeyPair;
        let kp = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|e| anyhow::anyhow!("not an Ed25519 PKCS#8 key: {e}"))?;
        Ok(Self {
            pkcs8_der: der.to_vec(),
            public_raw: kp.public_key().as_ref().to_vec(),
        })
    }

    /// From a `-----BEGIN PRIVATE KEY-----` PEM (as `openssl genpkey -algorithm ed25519` writes).
    pub fn from_private_pem(pem: &str) -> anyhow::Result<Self> {
        Self::from_pkcs8_der(&pem_body(pem, "PRIVATE KEY")?)
    }

    pub fn private_pem(&self) -> String {
        to_pem(&self.pkcs8_der, "PRIVATE KEY")
    }

    pub fn public_pem(&self) -> String {
        public_pem_from_raw(&self.public_raw)
    }

    /// Key id: a short, stable fingerprint of the public key (for the JWT header and the JWKS).
    pub fn key_id(&self) -> String {
        key_id(&self.public_raw)
    }
}

pub fn key_id(public_raw: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, public_raw);
    URL_SAFE_NO_PAD.encode(&digest.as_ref()[..12])
}

/// The authenticated caller, from a verified bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    pub id: Uuid,
    pub role: Role,
    pub token_id: Uuid,
}

impl AuthUser {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Role guard: `403 FORBIDDEN` unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "FORBIDDEN",
                "your role may not perform this action",
            ))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let verifier = parts
            .extensions
            .get::<Arc<JwtVerifier>>()
            .cloned()
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no JwtVerifier installed")))?;
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthError::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        let claims = verifier.verify(token)?;
        if let Some(revocations) = parts.extensions.get::<Arc<TokenRevocations>>().cloned() {
            if revocations.is_revoked(&claims).await {
                return Err(AuthError::Revoked.into());
            }
        }
        Ok(AuthUser {
            id: claims.sub,
            role: claims.role,
            token_id: claims.jti,
        })
    }
}

/// The Redis key of `user`'s revocation mark under the stack's key prefix (all services of one
/// stack share `redis_prefix`, so they read the key identity writes).
pub fn revocation_key(prefix: &str, user: Uuid) -> String {
    format!("{prefix}auth:revoked:{user}")
}

/// When a token was issued, in unix milliseconds: from its `jti` (a UUIDv7, whose first 48 bits
/// are the issuing millisecond; identity always mints them so), else from `iat` (whole seconds).
pub fn issued_at_millis(claims: &Claims) -> i64 {
    match claims.jti.get_version() {
        Some(uuid::Version::SortRand) => claims
            .jti
            .get_timestamp()
            .map(|t| {
                let (secs, nanos) = t.to_unix();
                secs as i64 * 1000 + i64::from(nanos / 1_000_000)
            })
            .unwrap_or(claims.iat * 1000),
        _ => claims.iat * 1000,
    }
}

/// Void every access token of `user` issued up to now: writes the mark `revocation_key` = now in
/// unix milliseconds, kept for `lifetime` (the access-token lifetime plus leeway: after that, every
/// token it voids has expired anyway). Returns the mark. Call it after the change that motivates it
/// has committed, so that a token issued after the mark carries the new state.
pub async fn revoke_access_tokens(
    redis: &crate::redis::RedisPool,
    user: Uuid,
    lifetime: std::time::Duration,
) -> redis::RedisResult<i64> {
    let now = chrono::Utc::now().timestamp_millis();
    let mut conn = redis.conn();
    redis::cmd("SET")
        .arg(revocation_key(&redis.key(&[]), user))
        .arg(now)
        .arg("PX")
        .arg(lifetime.as_millis().max(1) as u64)
        .query_async::<()>(&mut conn)
        .await?;
    Ok(now)
}

/// How long a looked-up mark (or its absence) is trusted: a revocation reaches every service within
/// this, plus one Redis round trip.
pub const REVOCATION_CACHE_FOR: std::time::Duration = std::time::Duration::from_secs(1);
/// A Redis lookup slower than this counts as a failure (the token is then accepted, ADR 010).
const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(300);
/// A dead Redis is re-dialled at most this often, so requests do not queue on connects.
const RECONNECT_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
/// Above this many cached users, expired entries are dropped (and all, if none had expired).
const CACHE_MAX: usize = 10_000;

/// The revocation check `AuthUser` runs after a token verifies. Installed by `Infra::serve` next to
/// the `JwtVerifier`. Fails open: when Redis cannot answer, the token is accepted (and the failure
/// logged and counted in `auth_revocation_checks_total{result="error"}`), see docs/adr/010.
pub struct TokenRevocations {
    prefix: String,
    source: Source,
    /// user → (when looked up, the mark then).
    cache: std::sync::Mutex<std::collections::HashMap<Uuid, (std::time::Instant, Option<i64>)>>,
}

enum Source {
    /// The service's own Redis connection.
    Pool(redis::aio::ConnectionManager),
    /// A service without Redis of its own (catalog): connected on first use, re-dialled at most
    /// every `RECONNECT_EVERY`.
    Lazy {
        client: redis::Client,
        manager: std::sync::RwLock<Option<redis::aio::ConnectionManager>>,
        next_attempt: tokio::sync::Mutex<std::time::Instant>,
    },
}

impl std::fmt::Debug for TokenRevocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRevocations")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl TokenRevocations {
    /// Through the service's Redis pool when it has one, else its own lazy connection to
    /// `config.redis_url`.
    pub fn new(
        config: &crate::config::CommonConfig,
        pool: Option<&crate::redis::RedisPool>,
    ) -> anyhow::Result<Self> {
        let source = match pool {
            Some(p) => Source::Pool(p.conn()),
            None => Source::Lazy {
                client: redis::Client::open(config.redis_url.expose())
                    .map_err(|e| anyhow::anyhow!("invalid redis_url: {e}"))?,
                manager: std::sync::RwLock::new(None),
                next_attempt: tokio::sync::Mutex::new(std::time::Instant::now()),
            },
        };
        Ok(Self {
            prefix: config.redis_prefix.clone(),
            source,
            cache: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// Whether `claims` were issued at or before their user's revocation mark.
    pub async fn is_revoked(&self, claims: &Claims) -> bool {
        let mark = match self.cached(claims.sub) {
            Some(mark) => mark,
            None => match self.lookup(claims.sub).await {
                Ok(mark) => {
                    self.remember(claims.sub, mark);
                    metrics::counter!("auth_revocation_checks_total", "result" => "looked_up")
                        .increment(1);
                    mark
                }
                Err(e) => {
                    metrics::counter!("auth_revocation_checks_total", "result" => "error")
                        .increment(1);
                    tracing::warn!(error = %e, "token revocation check failed; token accepted");
                    None
                }
            },
        };
        mark.is_some_and(|t| issued_at_millis(claims) <= t)
    }

    fn cached(&self, user: Uuid) -> Option<Option<i64>> {
        let cache = self.cache.lock().ok()?;
        cache
            .get(&user)
            .filter(|(at, _)| at.elapsed() < REVOCATION_CACHE_FOR)
            .map(|(_, mark)| *mark)
    }

    fn remember(&self, user: Uuid, mark: Option<i64>) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, (at, _)| at.elapsed() < REVOCATION_CACHE_FOR);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(user, (std::time::Instant::now(), mark));
    }

    async fn lookup(&self, user: Uuid) -> anyhow::Result<Option<i64>> {
        let mut conn = self.conn().await?;
        let mut cmd = redis::cmd("GET");
        cmd.arg(revocation_key(&self.prefix, user));
        let get = cmd.query_async::<Option<i64>>(&mut conn);
        Ok(tokio::time::timeout(LOOKUP_TIMEOUT, get)
            .await
            .map_err(|_| anyhow::anyhow!("Redis did not answer within {LOOKUP_TIMEOUT:?}"))??)
    }

    async fn conn(&self) -> anyhow::Result<redis::aio::ConnectionManager> {
        let (client, manager, next_attempt) = match &self.source {
            Source::Pool(c) => return Ok(c.clone()),
            Source::Lazy {
                client,
                manager,
                next_attempt,
            } => (client, manager, next_attempt),
        };
        if let Some(c) = manager.read().ok().and_then(|m| m.clone()) {
            return Ok(c);
        }
        // One request dials; the others wait for it at most one lookup timeout.
        let mut next = tokio::time::timeout(LOOKUP_TIMEOUT, next_attempt.lock())
            .await
            .map_err(|_| anyhow::anyhow!("still connecting to Redis"))?;
        if let Some(c) = manager.read().ok().and_then(|m| m.clone()) {
            return Ok(c);
        }
        if std::time::Instant::now() < *next {
            anyhow::bail!("Redis unreachable; next connection attempt later");
        }
        *next = std::time::Instant::now() + RECONNECT_EVERY;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(LOOKUP_TIMEOUT)
            .set_response_timeout(LOOKUP_TIMEOUT)
            .set_factor(2)
            .set_max_delay(500)
            .set_number_of_retries(1);
        let c = redis::aio::ConnectionManager::new_with_config(client.clone(), config).await?;
        if let Ok(mut m) = manager.write() {
            *m = Some(c.clone());
        }
        Ok(c)
    }
}

/// The caller if a token was sent (and is valid), for endpoints anyone may call but whose answer
/// depends on who asks. A token that is sent but invalid is still a `401`, not an anonymous call.
#[derive(Debug, Clone, Copy)]
pub struct MaybeUser(pub Option<AuthUser>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(AUTHORIZATION) {
            Ok(MaybeUser(Some(
                AuthUser::from_request_parts(parts, state).await?,
            )))
        } else {
            Ok(MaybeUser(None))
        }
    }
}

/// `AuthUser` that must be an admin (403 otherwise).
#[derive(Debug, Clone, Copy)]
pub struct AdminUser(pub AuthUser);

impl<S: Send + Sync> FromRequestParts<S> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        user.require(&[Role::Admin])?;
        Ok(AdminUser(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    fn claims(exp_offset: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: Uuid::now_v7(),
            role: Role::Buyer,
            iat: now,
            exp: now + exp_offset,
            iss: "iss".into(),
            aud: "aud".into(),
            jti: Uuid::now_v7(),
        }
    }

    fn sign(kp: &Ed25519KeyPair, c: &Claims) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            c,
            &EncodingKey::from_ed_der(&kp.pkcs8_der),
        )
        .unwrap()
    }

    #[test]
    fn pem_round_trips_and_verifies_a_signed_token() {
        let kp = Ed25519KeyPair::generate().unwrap();
        let again = Ed25519KeyPair::from_private_pem(&kp.private_pem()).unwrap();
        assert_eq!(again.public_raw, kp.public_raw);
        let v = JwtVerifier::from_public_pem(&kp.public_pem(), "iss", "aud").unwrap();
        let c = claims(60);
        assert_eq!(v.verify(&sign(&kp, &c)).unwrap(), c);
    }

    #[test]
    fn tokens_from_another_key_expired_or_for_another_audience_are_refused() {
        let kp = Ed25519KeyPair::generate().unwrap();
        let other = Ed25519KeyPair::generate().unwrap();
        let v = JwtVerifier::from_raw_public_key(&kp.public_raw, "iss", "aud");
        assert_eq!(
            v.verify(&sign(&other, &claims(60))),
            Err(AuthError::Invalid)
        );
        assert_eq!(v.verify(&sign(&kp, &claims(-120))), Err(AuthError::Expired));
        let mut c = claims(60);
        c.aud = "elsewhere".into();
        assert_eq!(v.verify(&sign(&kp, &c)), Err(AuthError::Invalid));
    }

    #[test]
    fn alg_none_and_hmac_tokens_are_refused() {
        let kp = Ed25519KeyPair::generate().unwrap();
        let v = JwtVerifier::from_raw_public_key(&kp.public_raw, "iss", "aud");
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(60)).unwrap());
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert_eq!(
            v.verify(&format!("{none_header}.{payload}.")),
            Err(AuthError::Invalid)
        );
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(60),
            &EncodingKey::from_secret(kp.public_pem().as_bytes()),
        )
        .unwrap();
        assert_eq!(v.verify(&hs), Err(AuthError::Invalid));
    }

    #[test]
    fn the_issue_time_is_the_v7_jtis_millisecond_and_otherwise_iat() {
        let mut c = claims(60);
        c.iat = 1_700_000_000;
        c.jti = Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            1_700_000_000,
            123_456_789,
        ));
        assert_eq!(issued_at_millis(&c), 1_700_000_000_123);
        c.jti = Uuid::from_u128(0x1234);
        assert_eq!(issued_at_millis(&c), 1_700_000_000_000);
    }

    #[test]
    fn only_ed25519_public_keys_are_accepted() {
        assert!(raw_public_key_from_pem(
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
        )
        .is_err());
        assert!(raw_public_key_from_pem("garbage").is_err());
    }
}
