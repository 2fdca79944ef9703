//! Postgres: one pool per service and its embedded migrations, applied at start-up (sqlx takes an
//! advisory lock, so several replicas starting at once apply them once).

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::config::CommonConfig;

pub async fn connect(config: &CommonConfig) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(config.database_max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect(config.database_url.expose())
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to Postgres: {e}"))
}

pub async fn migrate(pool: &PgPool, migrator: &Migrator) -> anyhow::Result<()> {
    migrator
        .run(pool)
        .await
        .map_err(|e| anyhow::anyhow!("migrations failed: {e}"))
}

/// The platform's own tables (outbox, inbox), which services that produce or consume events
/// carry in their database.
pub static PLATFORM_MIGRATOR: Migrator = sqlx::migrate!("../migrations/platform");

/// A service's migrations merged with the platform's, in version order, as one migrator (one
/// `_sqlx_migrations` history, validated as a whole).
pub fn service_migrator(service: &Migrator) -> Migrator {
    let mut all: Vec<_> = PLATFORM_MIGRATOR
        .iter()
        .chain(service.iter())
        .cloned()
        .collect();
    all.sort_by_key(|m| m.version);
    all.dedup_by_key(|m| m.version);
    Migrator {
        migrations: std::borrow::Cow::Owned(all),
        ..Migrator::DEFAULT
    }
}

/// True when `e` is a unique violation of the constraint (or unique index) named `constraint`.
pub fn is_unique_violation(e: &sqlx::Error, constraint: &str) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.code().as_deref() == Some("23505") && db.constraint() == Some(constraint)
        }
        _ => false,
    }
}

/// True when `e` is a foreign-key violation of the constraint named `constraint` (a referenced row
/// is missing on insert, or a referencing row blocks a delete).
pub fn is_foreign_key_violation(e: &sqlx::Error, constraint: &str) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.code().as_deref() == Some("23503") && db.constraint() == Some(constraint)
        }
        _ => false,
    }
}

/// True when `e` is a check-constraint violation of the constraint named `constraint`.
pub fn is_check_violation(e: &sqlx::Error, constraint: &str) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.code().as_deref() == Some("23514") && db.constraint() == Some(constraint)
        }
        _ => false,
    }
}

/// True for the failures that retrying the same transaction can cure: a deadlock (40P01) or a
/// serialization failure (40001).
pub fn is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("40P01" | "40001")),
        _ => false,
    }
}
