//! Brand SQL.

use sqlx::PgExecutor;
use uuid::Uuid;

use super::dto::Brand;
use crate::categories::dto::Category;

const COLUMNS: &str = "id, name, slug, description, logo_url, created_at, updated_at";

pub struct BrandRow<'a> {
    pub name: &'a str,
    pub slug: &'a str,
    pub description: Option<&'a str>,
    pub logo_url: Option<&'a str>,
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    id: Uuid,
    b: &BrandRow<'_>,
) -> Result<Brand, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO brands (id, name, slug, description, logo_url) VALUES ($1, $2, $3, $4, $5)
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(b.name)
    .bind(b.slug)
    .bind(b.description)
    .bind(b.logo_url)
    .fetch_one(db)
    .await
}

pub async fn update(
    db: impl PgExecutor<'_>,
    id: Uuid,
    b: &BrandRow<'_>,
) -> Result<Option<Brand>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE brands SET name = $2, slug = $3, description = $4, logo_url = $5, updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(b.name)
    .bind(b.slug)
    .bind(b.description)
    .bind(b.logo_url)
    .fetch_optional(db)
    .await
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Brand>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM brands WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn page(
    db: impl PgExecutor<'_>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Brand>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM brands WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2"
    ))
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

pub async fn delete(db: impl PgExecutor<'_>, id: Uuid) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM brands WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?
        .rows_affected()
        == 1)
}

pub async fn detach_deleted_products(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE products SET brand_id = NULL WHERE brand_id = $1 AND deleted_at IS NOT NULL",
    )
    .bind(id)
    .execute(db)
    .await
    .map(|_| ())
}

pub async fn link(db: impl PgExecutor<'_>, brand: Uuid, category: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO brand_categories (brand_id, category_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(brand)
    .bind(category)
    .execute(db)
    .await
    .map(|_| ())
}

pub async fn unlink(
    db: impl PgExecutor<'_>,
    brand: Uuid,
    category: Uuid,
) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM brand_categories WHERE brand_id = $1 AND category_id = $2")
            .bind(brand)
            .bind(category)
            .execute(db)
            .await?
            .rows_affected()
            == 1,
    )
}

pub async fn categories_of(
    db: impl PgExecutor<'_>,
    brand: Uuid,
) -> Result<Vec<Category>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.id, c.parent_id, c.name, c.slug, c.created_at, c.updated_at
         FROM brand_categories bc JOIN categories c ON c.id = bc.category_id
         WHERE bc.brand_id = $1 ORDER BY c.name, c.id",
    )
    .bind(brand)
    .fetch_all(db)
    .await
}

pub async fn brands_in(db: impl PgExecutor<'_>, category: Uuid) -> Result<Vec<Brand>, sqlx::Error> {
    sqlx::query_as(
        "SELECT b.id, b.name, b.slug, b.description, b.logo_url, b.created_at, b.updated_at
         FROM brand_categories bc JOIN brands b ON b.id = bc.brand_id
         WHERE bc.category_id = $1 ORDER BY b.name, b.id",
    )
    .bind(category)
    .fetch_all(db)
    .await
}

pub async fn name_taken(db: impl PgExecutor<'_>, name: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM brands WHERE lower(name) = lower($1))")
        .bind(name)
        .fetch_one(db)
        .await
}
