//! Category SQL.

use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::dto::{Category, CategoryNode};

const COLUMNS: &str = "id, parent_id, name, slug, created_at, updated_at";

pub async fn insert(
    db: impl PgExecutor<'_>,
    id: Uuid,
    parent_id: Option<Uuid>,
    name: &str,
    slug: &str,
) -> Result<Category, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO categories (id, parent_id, name, slug) VALUES ($1, $2, $3, $4)
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(parent_id)
    .bind(name)
    .bind(slug)
    .fetch_one(db)
    .await
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Category>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM categories WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// A page of all categories in id order (`after` excluded).
pub async fn page(
    db: impl PgExecutor<'_>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Category>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM categories WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

pub async fn children(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<Category>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM categories WHERE parent_id = $1 ORDER BY name, id"
    ))
    .bind(id)
    .fetch_all(db)
    .await
}

/// The category and everything under it, parents before children.
pub async fn subtree(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<CategoryNode>, sqlx::Error> {
    sqlx::query_as(
        "WITH RECURSIVE t AS (
             SELECT id, parent_id, name, slug, 0 AS depth FROM categories WHERE id = $1
             UNION ALL
             SELECT c.id, c.parent_id, c.name, c.slug, t.depth + 1
             FROM categories c JOIN t ON c.parent_id = t.id
         )
         SELECT id, parent_id, name, slug, depth FROM t ORDER BY depth, name, id",
    )
    .bind(id)
    .fetch_all(db)
    .await
}

/// The ids of the category and all its descendants.
pub async fn subtree_ids(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "WITH RECURSIVE t AS (
             SELECT id FROM categories WHERE id = $1
             UNION ALL
             SELECT c.id FROM categories c JOIN t ON c.parent_id = t.id
         )
         SELECT id FROM t",
    )
    .bind(id)
    .fetch_all(db)
    .await
}

/// The path from the root down to the category's parent (the category itself excluded).
pub async fn ancestors(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Vec<CategoryNode>, sqlx::Error> {
    sqlx::query_as(
        "WITH RECURSIVE up AS (
             SELECT c.id, c.parent_id, c.name, c.slug, 0 AS depth
             FROM categories c WHERE c.id = (SELECT parent_id FROM categories WHERE id = $1)
             UNION ALL
             SELECT c.id, c.parent_id, c.name, c.slug, up.depth - 1
             FROM categories c JOIN up ON c.id = up.parent_id
         )
         SELECT id, parent_id, name, slug, depth FROM up ORDER BY depth",
    )
    .bind(id)
    .fetch_all(db)
    .await
}

/// Serialise moves: two concurrent moves could each pass the cycle check and together make a
/// cycle. Reads are not blocked (SHARE ROW EXCLUSIVE conflicts only with writers).
pub async fn lock_for_move(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("LOCK TABLE categories IN SHARE ROW EXCLUSIVE MODE")
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn update(
    db: impl PgExecutor<'_>,
    id: Uuid,
    parent_id: Option<Uuid>,
    name: &str,
    slug: &str,
) -> Result<Category, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE categories SET parent_id = $2, name = $3, slug = $4, updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(parent_id)
    .bind(name)
    .bind(slug)
    .fetch_one(db)
    .await
}

/// Soft-deleted products keep no hold on their category.
pub async fn detach_deleted_products(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE products SET category_id = NULL WHERE category_id = $1 AND deleted_at IS NOT NULL",
    )
    .bind(id)
    .execute(db)
    .await
    .map(|_| ())
}

pub async fn delete(db: impl PgExecutor<'_>, id: Uuid) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM categories WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?
        .rows_affected()
        == 1)
}
