//! Postgres: one pool per service and its embedded migrations, applied at start-up (sqlx takes an
//! advisory lock, so several replicas starting at once apply them once).

use std::time::Duration;

use sqlx::migrate::{Migration, Migrator};
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
/// `_sqlx_migrations` history, validated as a whole). Two migrations with one version are an
/// error: sqlx would apply only one of them and record it under the other's name.
pub fn service_migrator(service: &Migrator) -> anyhow::Result<Migrator> {
    let mut all: Vec<(&str, &Migration)> = PLATFORM_MIGRATOR
        .iter()
        .map(|m| ("platform", m))
        .chain(service.iter().map(|m| ("service", m)))
        .collect();
    all.sort_by_key(|(_, m)| m.version);
    if let Some(pair) = all.windows(2).find(|w| w[0].1.version == w[1].1.version) {
        let [(a_from, a), (b_from, b)] = [pair[0], pair[1]];
        anyhow::bail!(
            "migration version {} is used twice: {a_from} migration '{}' and {b_from} migration \
             '{}'; give the service's migration a version of its own (a later timestamp)",
            a.version,
            a.description,
            b.description,
        );
    }
    Ok(Migrator {
        migrations: std::borrow::Cow::Owned(all.into_iter().map(|(_, m)| m.clone()).collect()),
        ..Migrator::DEFAULT
    })
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

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use sqlx::migrate::MigrationType;

    use super::*;

    fn migrator(migrations: Vec<Migration>) -> Migrator {
        Migrator {
            migrations: Cow::Owned(migrations),
            ..Migrator::DEFAULT
        }
    }

    fn migration(version: i64, description: &'static str) -> Migration {
        Migration::new(
            version,
            Cow::Borrowed(description),
            MigrationType::Simple,
            Cow::Borrowed("SELECT 1"),
            false,
        )
    }

    #[test]
    fn a_service_migration_reusing_a_platform_version_is_an_error_naming_both() {
        let platform = PLATFORM_MIGRATOR.iter().next().unwrap();
        let service = migrator(vec![
            migration(platform.version, "orders"),
            migration(20261127000001, "payments"),
        ]);
        let err = service_migrator(&service).unwrap_err().to_string();
        assert!(
            err.contains(&format!(
                "migration version {} is used twice",
                platform.version
            )),
            "{err}"
        );
        assert!(
            err.contains(&format!("platform migration '{}'", platform.description)),
            "{err}"
        );
        assert!(err.contains("service migration 'orders'"), "{err}");
    }

    #[test]
    fn a_service_s_migrations_follow_the_platform_s_in_version_order() {
        let service = migrator(vec![
            migration(20261127000002, "second"),
            migration(20261127000001, "first"),
        ]);
        let merged = service_migrator(&service).unwrap();
        let versions: Vec<i64> = merged.iter().map(|m| m.version).collect();
        let mut expected: Vec<i64> = PLATFORM_MIGRATOR.iter().map(|m| m.version).collect();
        expected.extend([20261127000001, 20261127000002]);
        assert_eq!(versions, expected);
    }
}
