//! SQL for sessions (refresh-token families), refresh tokens and single-use mail tokens.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

pub async fn insert_session(
    db: impl PgExecutor<'_>,
    id: Uuid,
    user: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO sessions (id, user_id) VALUES ($1, $2)")
        .bind(id)
        .bind(user)
        .execute(db)
        .await
        .map(|_| ())
}

pub async fn insert_refresh_token(
    db: impl PgExecutor<'_>,
    session: Uuid,
    hash: &[u8],
    ttl_secs: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO refresh_tokens (id, session_id, token_hash, expires_at)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
    )
    .bind(shared::id::new_id())
    .bind(session)
    .bind(hash)
    .bind(ttl_secs as f64)
    .execute(db)
    .await
    .map(|_| ())
}

#[derive(Debug, FromRow)]
pub struct RefreshTokenRow {
    pub id: Uuid,
    pub session_id: Uuid,
    pub expired: bool,
    pub used: bool,
    pub session_revoked: bool,
    pub user_id: Uuid,
    pub role: String,
    pub status: String,
}

/// The token with its session and user, locked, so two refreshes with one token are serialised.
pub async fn find_refresh_token_for_update(
    db: impl PgExecutor<'_>,
    hash: &[u8],
) -> Result<Option<RefreshTokenRow>, sqlx::Error> {
    sqlx::query_as::<_, RefreshTokenRow>(
        "SELECT rt.id, rt.session_id, rt.expires_at <= now() AS expired, rt.used_at IS NOT NULL AS used,
                s.revoked_at IS NOT NULL AS session_revoked, s.user_id, u.role, u.status
         FROM refresh_tokens rt
         JOIN sessions s ON s.id = rt.session_id
         JOIN users u ON u.id = s.user_id
         WHERE rt.token_hash = $1
         FOR UPDATE OF rt, s",
    )
    .bind(hash)
    .fetch_optional(db)
    .await
}

pub async fn mark_refresh_token_used(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE refresh_tokens SET used_at = now() WHERE id = $1")
        .bind(id)
        .execute(db)
        .await
        .map(|_| ())
}

pub async fn revoke_session(
    db: impl PgExecutor<'_>,
    id: Uuid,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE sessions SET revoked_at = now(), revoke_reason = $2 WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(reason)
    .execute(db)
    .await
    .map(|_| ())
}

pub async fn revoke_all_sessions(
    db: impl PgExecutor<'_>,
    user: Uuid,
    reason: &str,
) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "UPDATE sessions SET revoked_at = now(), revoke_reason = $2
         WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user)
    .bind(reason)
    .execute(db)
    .await
    .map(|r| r.rows_affected())
}

pub async fn session_of_refresh_token(
    db: impl PgExecutor<'_>,
    hash: &[u8],
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT session_id FROM refresh_tokens WHERE token_hash = $1")
        .bind(hash)
        .fetch_optional(db)
        .await
}

pub const VERIFY_EMAIL: &str = "verify_email";
pub const RESET_PASSWORD: &str = "reset_password";

pub async fn insert_user_token(
    db: impl PgExecutor<'_>,
    user: Uuid,
    purpose: &str,
    email: &str,
    hash: &[u8],
    ttl_secs: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO user_tokens (id, user_id, purpose, email, token_hash, expires_at)
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))",
    )
    .bind(shared::id::new_id())
    .bind(user)
    .bind(purpose)
    .bind(email)
    .bind(hash)
    .bind(ttl_secs as f64)
    .execute(db)
    .await
    .map(|_| ())
}

/// Earlier unused tokens of the same purpose stop working when a new one is issued.
pub async fn expire_unused_user_tokens(
    db: impl PgExecutor<'_>,
    user: Uuid,
    purpose: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE user_tokens SET used_at = now()
         WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
    )
    .bind(user)
    .bind(purpose)
    .execute(db)
    .await
    .map(|_| ())
}

#[derive(Debug, FromRow)]
pub struct ConsumedToken {
    pub user_id: Uuid,
    pub email: String,
    pub created_at: DateTime<Utc>,
}

/// A closed account's mail tokens go, with the addresses they were sent to: nothing may keep
/// the person's email after the account is scrubbed.
pub async fn delete_user_tokens(db: impl PgExecutor<'_>, user: Uuid) -> Result<u64, sqlx::Error> {
    sqlx::query("DELETE FROM user_tokens WHERE user_id = $1")
        .bind(user)
        .execute(db)
        .await
        .map(|r| r.rows_affected())
}

/// Is the token unused and unexpired? A cheap check before expensive work (hashing a new
/// password); the use itself is [`consume_user_token`].
pub async fn user_token_is_live(
    db: impl PgExecutor<'_>,
    purpose: &str,
    hash: &[u8],
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM user_tokens
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now())",
    )
    .bind(hash)
    .bind(purpose)
    .fetch_one(db)
    .await
}

/// Use a token once: one conditional UPDATE, so two concurrent uses cannot both succeed.
pub async fn consume_user_token(
    db: impl PgExecutor<'_>,
    purpose: &str,
    hash: &[u8],
) -> Result<Option<ConsumedToken>, sqlx::Error> {
    sqlx::query_as::<_, ConsumedToken>(
        "UPDATE user_tokens SET used_at = now()
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now()
         RETURNING user_id, email, created_at",
    )
    .bind(hash)
    .bind(purpose)
    .fetch_optional(db)
    .await
}
