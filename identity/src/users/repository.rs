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
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, username, email, phone, password_hash, role, status, email_verified_at, created_at";

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

/// By username (any case) or by email; deleted accounts are never found.
pub async fn find_by_login(
    db: impl PgExecutor<'_>,
    identifier: &str,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(&format!(
        "SELECT {COLUMNS} FROM users
         WHERE (lower(username) = lower($1) OR email = lower($1)) AND status <> 'deleted'
         LIMIT 1"
    ))
    .bind(identifier)
    .fetch_optional(db)
    .await
}

pub async fn find_active_by_email(
    db: impl PgExecutor<'_>,
    email: &str,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as::<_, UserRow>(&format!(
        "SELECT {COLUMNS} FROM users WHERE email = $1 AND status = 'active'"
    ))
    .bind(email)
    .fetch_optional(db)
    .await
}

pub struct ProfileChanges<'a> {
    pub username: Option<&'a str>,
    pub email: Option<&'a str>,
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
            email_verified_at = CASE WHEN $3::text IS NOT NULL AND $3 <> email THEN NULL ELSE email_verified_at END,
            email = COALESCE($3, email),
            phone = CASE WHEN $4 THEN $5 ELSE phone END,
            updated_at = now()
         WHERE id = $1
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(c.username)
    .bind(c.email)
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
            password_hash = '!',
            updated_at = now()
         WHERE id = $1 AND status <> 'deleted'",
    )
    .bind(id)
    .execute(db)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn mark_email_verified(
    db: impl PgExecutor<'_>,
    id: Uuid,
    email: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE users SET email_verified_at = COALESCE(email_verified_at, now()), updated_at = now()
         WHERE id = $1 AND email = $2 AND status <> 'deleted'",
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
