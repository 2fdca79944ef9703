//! SQL for users. Single statements take any executor; the service owns transactions.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgExecutor};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub phone: Option<String>,
    pub password_hash: String,
    pub role: String,
    pub status: String,
    pub email_verified_at: Option<DateTime<Utc>>,
    /// An asked-for new address, not yet verified; `email` stays the login and reset address.
    pub pending_email: Option<String>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, username, email, phone, password_hash, role, status, email_verified_at, \
     pending_email, created_at";

pub struct NewUser<'a> {
    pub id: Uuid,
    pub username: &'a str,
    pub email: &'a str,
    pub phone: Option<&'a str>,
    pub password_hash: &'a str,
    pub role: &'a str,
    pub email_verified: bool,
}

pub async fn insert(db: impl PgExecutor<'_>, u: &NewUser<'_>) -> Result<UserRow, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(&format!(
        "INSERT INTO users (id, username, email, phone, password_hash, role, email_verified_at)
         VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $7 THEN now() END)
         RETURNING {COLUMNS}"
    ))
    .bind(u.id)
    .bind(u.username)
    .bind(u.email)
    .bind(u.phone)
    .bind(u.password_hash)
    .bind(u.role)
    .bind(u.email_verified)
    .fetch_one(db)
    .await
}

pub async fn find_by_id(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn find_by_id_for_update(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(&format!(
        "SELECT {COLUMNS} FROM users WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// By username (any case) or by email; deleted accounts, and unverified ones older than
/// `unverified_ttl_secs` (expired: see `expire_unverified_holding`), are never found.
pub async fn find_by_login(
    db: impl PgExecutor<'_>,
    identifier: &str,
    unverified_ttl_secs: i64,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(&format!(
        "SELECT {COLUMNS} FROM users
         WHERE (lower(username) = lower($1) OR email = lower($1)) AND status <> 'deleted'
           AND (email_verified_at IS NOT NULL
                OR created_at >= now() - $2::bigint * interval '1 second')
         LIMIT 1"
    ))
    .bind(identifier)
    .bind(unverified_ttl_secs)
    .fetch_optional(db)
    .await
}

/// Only a verified address receives password-reset mail: an address nobody proved to own (a
/// typo at registration, or one set by a thief) must never become a way into the account.
pub async fn find_active_verified_by_email(
    db: impl PgExecutor<'_>,
    email: &str,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(&format!(
        "SELECT {COLUMNS} FROM users
         WHERE email = $1 AND status = 'active' AND email_verified_at IS NOT NULL"
    ))
    .bind(email)
    .fetch_optional(db)
    .await
}

/// An unverified account that has not expired: an expired one gets no new verification mail,
/// so it cannot be verified back to life while its email is free for someone else.
pub async fn find_active_unverified_by_email(
    db: impl PgExecutor<'_>,
    email: &str,
    unverified_ttl_secs: i64,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(&format!(
        "SELECT {COLUMNS} FROM users
         WHERE email = $1 AND status = 'active' AND email_verified_at IS NULL
           AND created_at >= now() - $2::bigint * interval '1 second'"
    ))
    .bind(email)
    .bind(unverified_ttl_secs)
    .fetch_optional(db)
    .await
}

pub struct ProfileChanges<'a> {
    pub username: Option<&'a str>,
    /// A new address to hold as pending until it is verified (`email` itself is not touched).
    pub pending_email: Option<&'a str>,
    /// `Some(None)` clears the phone.
    pub phone: Option<Option<&'a str>>,
}

pub async fn update_profile(
    db: impl PgExecutor<'_>,
    id: Uuid,
    c: &ProfileChanges<'_>,
) -> Result<UserRow, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(&format!(
        "UPDATE users SET
            username = COALESCE($2, username),
            pending_email = COALESCE($3, pending_email),
            phone = CASE WHEN $4 THEN $5 ELSE phone END,
            updated_at = now()
         WHERE id = $1
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(c.username)
    .bind(c.pending_email)
    .bind(c.phone.is_some())
    .bind(c.phone.flatten())
    .fetch_one(db)
    .await
}

pub async fn set_password_hash(
    db: impl PgExecutor<'_>,
    id: Uuid,
    hash: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(hash)
        .execute(db)
        .await
        .map(|_| ())
}

pub async fn set_role(
    db: impl PgExecutor<'_>,
    id: Uuid,
    role: &str,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(&format!(
        "UPDATE users SET role = $2, updated_at = now() WHERE id = $1 AND status <> 'deleted'
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(role)
    .fetch_optional(db)
    .await
}

/// Conditional status change: only from one of `from`, so racing changes cannot both win.
pub async fn set_status(
    db: impl PgExecutor<'_>,
    id: Uuid,
    to: &str,
    from: &[&str],
) -> Result<Option<UserRow>, sqlx::Error> {
    let from: Vec<String> = from.iter().map(|s| s.to_string()).collect();
    sqlx::query_as::<_, UserRow>(&format!(
        "UPDATE users SET status = $2, updated_at = now() WHERE id = $1 AND status = ANY($3)
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(to)
    .bind(&from)
    .fetch_optional(db)
    .await
}

/// Closing an account keeps the row (other services refer to the id) but scrubs what identifies
/// the person and frees the username and email for reuse.
pub async fn scrub_and_delete(db: impl PgExecutor<'_>, id: Uuid) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE users SET
            status = 'deleted',
            username = 'deleted-' || replace(id::text, '-', ''),
            email = 'deleted-' || replace(id::text, '-', '') || '@deleted.invalid',
            phone = NULL,
            pending_email = NULL,
            password_hash = '!',
            updated_at = now()
         WHERE id = $1 AND status <> 'deleted'",
    )
    .bind(id)
    .execute(db)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// An account never verified within `unverified_ttl_secs` of registering has expired: scrub it
/// as closing an account does, when it holds `username` (any case) or `email`, so a registration
/// for them can go ahead. Run in the registration's transaction, before its insert: a racing
/// registration blocks on the same row, finds it already scrubbed, and meets the unique index.
/// Returns the ids scrubbed (their sessions and mail tokens are the caller's to remove).
pub async fn expire_unverified_holding(
    db: impl PgExecutor<'_>,
    username: &str,
    email: &str,
    unverified_ttl_secs: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE users SET
            status = 'deleted',
            username = 'deleted-' || replace(id::text, '-', ''),
            email = 'deleted-' || replace(id::text, '-', '') || '@deleted.invalid',
            phone = NULL,
            pending_email = NULL,
            password_hash = '!',
            updated_at = now()
         WHERE (lower(username) = lower($1) OR email = $2)
           AND status <> 'deleted'
           AND email_verified_at IS NULL
           AND created_at < now() - $3::bigint * interval '1 second'
         RETURNING id",
    )
    .bind(username)
    .bind(email)
    .bind(unverified_ttl_secs)
    .fetch_all(db)
    .await
}

/// Is `email` the address of an account other than `id`?
pub async fn email_in_use(
    db: impl PgExecutor<'_>,
    email: &str,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE email = $1 AND id <> $2)")
        .bind(email)
        .bind(id)
        .fetch_one(db)
        .await
}

/// A verification token proves ownership of the address it was mailed to: the current address
/// becomes verified, or the pending one replaces it (and is verified). Any other address (an
/// earlier pending one, say) proves nothing. A pending address someone else verified first meets
/// `users_email_key`.
pub async fn mark_email_verified(
    db: impl PgExecutor<'_>,
    id: Uuid,
    email: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE users SET
            email_verified_at = CASE WHEN email = $2 THEN COALESCE(email_verified_at, now()) ELSE now() END,
            email = $2,
            pending_email = CASE WHEN email = $2 THEN pending_email ELSE NULL END,
            updated_at = now()
         WHERE id = $1 AND (email = $2 OR pending_email = $2) AND status <> 'deleted'",
    )
    .bind(id)
    .bind(email)
    .execute(db)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub struct ListFilter<'a> {
    pub role: Option<&'a str>,
    pub status: Option<&'a str>,
    pub after: Option<Uuid>,
    pub limit: i64,
}

/// Keyset page ordered by id (UUIDv7, so oldest first); fetches `limit` rows as asked.
pub async fn list(
    db: impl PgExecutor<'_>,
    f: &ListFilter<'_>,
) -> Result<Vec<UserRow>, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(&format!(
        "SELECT {COLUMNS} FROM users
         WHERE ($1::text IS NULL OR role = $1)
           AND ($2::text IS NULL OR status = $2)
           AND ($3::uuid IS NULL OR id > $3)
         ORDER BY id
         LIMIT $4"
    ))
    .bind(f.role)
    .bind(f.status)
    .bind(f.after)
    .bind(f.limit)
    .fetch_all(db)
    .await
}
