//! Product, SKU and image SQL.

use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::dto::{Image, ProductRow, ProductSummary, Sku, SkuLookup};

const PRODUCT: &str = "id, seller_id, name, slug, description, category_id, brand_id, status, \
                       currency::text AS currency, min_price, created_at, updated_at";
const SKU: &str = "id, product_id, sku_code, price, currency::text AS currency, attributes, status, \
                   stock_quantity, reserved_quantity, stock_quantity - reserved_quantity AS available, \
                   created_at, updated_at";
const IMAGE: &str = "id, product_id, url, alt_text, sort_order, is_primary, created_at";

pub struct NewProduct<'a> {
    pub id: Uuid,
    pub seller_id: Uuid,
    pub name: &'a str,
    pub slug: &'a str,
    pub description: Option<&'a str>,
    pub category_id: Option<Uuid>,
    pub brand_id: Option<Uuid>,
}

pub async fn insert_product(
    db: impl PgExecutor<'_>,
    p: &NewProduct<'_>,
) -> Result<ProductRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO products (id, seller_id, name, slug, description, category_id, brand_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING {PRODUCT}"
    ))
    .bind(p.id)
    .bind(p.seller_id)
    .bind(p.name)
    .bind(p.slug)
    .bind(p.description)
    .bind(p.category_id)
    .bind(p.brand_id)
    .fetch_one(db)
    .await
}

/// A live (not deleted) product.
pub async fn product(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<ProductRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PRODUCT} FROM products WHERE id = $1 AND deleted_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// A live product, locked for the rest of the transaction (every write to a product, its SKUs or
/// its images goes through this lock, so they serialise per product).
pub async fn lock_product(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<ProductRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PRODUCT} FROM products WHERE id = $1 AND deleted_at IS NULL FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn product_id_by_slug(
    db: impl PgExecutor<'_>,
    slug: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM products WHERE slug = $1 AND deleted_at IS NULL")
        .bind(slug)
        .fetch_optional(db)
        .await
}

pub struct ProductUpdate<'a> {
    pub name: &'a str,
    pub slug: &'a str,
    pub description: Option<&'a str>,
    pub category_id: Option<Uuid>,
    pub brand_id: Option<Uuid>,
    pub status: &'a str,
}

pub async fn update_product(
    db: impl PgExecutor<'_>,
    id: Uuid,
    u: &ProductUpdate<'_>,
) -> Result<ProductRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE products SET name = $2, slug = $3, description = $4, category_id = $5,
                brand_id = $6, status = $7, updated_at = now()
         WHERE id = $1 RETURNING {PRODUCT}"
    ))
    .bind(id)
    .bind(u.name)
    .bind(u.slug)
    .bind(u.description)
    .bind(u.category_id)
    .bind(u.brand_id)
    .bind(u.status)
    .fetch_one(db)
    .await
}

pub async fn soft_delete_product(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE products SET deleted_at = now(), updated_at = now() WHERE id = $1")
        .bind(id)
        .execute(db)
        .await
        .map(|_| ())
}

/// Re-derive the product's "price from" and currency from its live SKUs.
pub async fn refresh_prices(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE products SET
            min_price = (SELECT min(price) FROM skus
                         WHERE product_id = $1 AND deleted_at IS NULL AND status = 'active'),
            currency = (SELECT min(currency) FROM skus WHERE product_id = $1 AND deleted_at IS NULL),
            updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .execute(db)
    .await
    .map(|_| ())
}

pub async fn skus_of(db: impl PgExecutor<'_>, product: Uuid) -> Result<Vec<Sku>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SKU} FROM skus WHERE product_id = $1 AND deleted_at IS NULL ORDER BY id"
    ))
    .bind(product)
    .fetch_all(db)
    .await
}

pub async fn images_of(db: impl PgExecutor<'_>, product: Uuid) -> Result<Vec<Image>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {IMAGE} FROM product_images WHERE product_id = $1 ORDER BY sort_order, id"
    ))
    .bind(product)
    .fetch_all(db)
    .await
}

pub struct NewSku<'a> {
    pub id: Uuid,
    pub product_id: Uuid,
    pub sku_code: &'a str,
    pub price: Decimal,
    pub currency: &'a str,
    pub attributes: &'a Value,
    pub status: &'a str,
    pub stock: i32,
}

pub async fn insert_sku(db: impl PgExecutor<'_>, s: &NewSku<'_>) -> Result<Sku, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO skus (id, product_id, sku_code, price, currency, attributes, status, stock_quantity)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING {SKU}"
    ))
    .bind(s.id)
    .bind(s.product_id)
    .bind(s.sku_code)
    .bind(s.price)
    .bind(s.currency)
    .bind(Json(s.attributes))
    .bind(s.status)
    .bind(s.stock)
    .fetch_one(db)
    .await
}

/// The product a live SKU belongs to.
pub async fn product_of_sku(
    db: impl PgExecutor<'_>,
    sku: Uuid,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT product_id FROM skus WHERE id = $1 AND deleted_at IS NULL")
        .bind(sku)
        .fetch_optional(db)
        .await
}

/// A live SKU, locked.
pub async fn lock_sku(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Sku>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SKU} FROM skus WHERE id = $1 AND deleted_at IS NULL FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn update_sku(
    db: impl PgExecutor<'_>,
    id: Uuid,
    price: Decimal,
    status: &str,
    attributes: &Value,
) -> Result<Sku, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE skus SET price = $2, status = $3, attributes = $4, updated_at = now()
         WHERE id = $1 RETURNING {SKU}"
    ))
    .bind(id)
    .bind(price)
    .bind(status)
    .bind(Json(attributes))
    .fetch_one(db)
    .await
}

pub async fn set_stock(db: impl PgExecutor<'_>, id: Uuid, stock: i32) -> Result<Sku, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE skus SET stock_quantity = $2, updated_at = now() WHERE id = $1 RETURNING {SKU}"
    ))
    .bind(id)
    .bind(stock)
    .fetch_one(db)
    .await
}

pub async fn soft_delete_sku(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE skus SET deleted_at = now(), updated_at = now() WHERE id = $1")
        .bind(id)
        .execute(db)
        .await
        .map(|_| ())
}

/// Append to the stock history (see the audit).
pub async fn record_movement(
    db: impl PgExecutor<'_>,
    sku: Uuid,
    kind: &str,
    delta: i32,
    actor: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO stock_movements (sku_id, kind, delta, actor_id) VALUES ($1, $2, $3, $4)",
    )
    .bind(sku)
    .bind(kind)
    .bind(delta)
    .bind(actor)
    .execute(db)
    .await
    .map(|_| ())
}

pub async fn image_count(db: impl PgExecutor<'_>, product: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM product_images WHERE product_id = $1")
        .bind(product)
        .fetch_one(db)
        .await
}

pub async fn clear_primary(db: impl PgExecutor<'_>, product: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE product_images SET is_primary = false WHERE product_id = $1 AND is_primary")
        .bind(product)
        .execute(db)
        .await
        .map(|_| ())
}

pub async fn insert_image(
    db: impl PgExecutor<'_>,
    product: Uuid,
    url: &str,
    alt_text: Option<&str>,
    sort_order: i32,
    is_primary: bool,
) -> Result<Image, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO product_images (id, product_id, url, alt_text, sort_order, is_primary)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {IMAGE}"
    ))
    .bind(shared::id::new_id())
    .bind(product)
    .bind(url)
    .bind(alt_text)
    .bind(sort_order)
    .bind(is_primary)
    .fetch_one(db)
    .await
}

pub async fn image(
    db: impl PgExecutor<'_>,
    product: Uuid,
    id: Uuid,
) -> Result<Option<Image>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {IMAGE} FROM product_images WHERE id = $1 AND product_id = $2"
    ))
    .bind(id)
    .bind(product)
    .fetch_optional(db)
    .await
}

pub async fn update_image(
    db: impl PgExecutor<'_>,
    id: Uuid,
    alt_text: Option<&str>,
    sort_order: i32,
    is_primary: bool,
) -> Result<Image, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE product_images SET alt_text = $2, sort_order = $3, is_primary = $4
         WHERE id = $1 RETURNING {IMAGE}"
    ))
    .bind(id)
    .bind(alt_text)
    .bind(sort_order)
    .bind(is_primary)
    .fetch_one(db)
    .await
}

pub async fn delete_image(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM product_images WHERE id = $1")
        .bind(id)
        .execute(db)
        .await
        .map(|_| ())
}

/// Make the first image (by sort order) primary when none is.
pub async fn ensure_primary(db: impl PgExecutor<'_>, product: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE product_images SET is_primary = true
         WHERE id = (SELECT id FROM product_images WHERE product_id = $1 ORDER BY sort_order, id LIMIT 1)
           AND NOT EXISTS (SELECT 1 FROM product_images WHERE product_id = $1 AND is_primary)",
    )
    .bind(product)
    .execute(db)
    .await
    .map(|_| ())
}

pub async fn seller_page(
    db: impl PgExecutor<'_>,
    seller: Uuid,
    status: Option<&str>,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ProductSummary>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.id, p.name, p.slug, p.status, p.currency::text AS currency, p.min_price,
                (SELECT count(*) FROM skus s WHERE s.product_id = p.id AND s.deleted_at IS NULL) AS sku_count,
                p.created_at, p.updated_at
         FROM products p
         WHERE p.seller_id = $1 AND p.deleted_at IS NULL
           AND ($2::text IS NULL OR p.status = $2)
           AND ($3::uuid IS NULL OR p.id < $3)
         ORDER BY p.id DESC LIMIT $4",
    )
    .bind(seller)
    .bind(status)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
}

pub async fn lookup_skus(
    db: impl PgExecutor<'_>,
    ids: &[Uuid],
) -> Result<Vec<SkuLookup>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.id, s.product_id, p.name AS product_name, p.seller_id, s.sku_code, s.price,
                s.currency::text AS currency,
                CASE WHEN s.status = 'active' AND p.status = 'active' THEN 'active' ELSE 'inactive' END
                    AS status,
                s.stock_quantity - s.reserved_quantity AS available,
                s.attributes,
                (SELECT i.url FROM product_images i WHERE i.product_id = p.id AND i.is_primary)
                    AS image_url
         FROM skus s JOIN products p ON p.id = s.product_id
         WHERE s.id = ANY($1) AND s.deleted_at IS NULL AND p.deleted_at IS NULL
           AND p.status <> 'draft'
         ORDER BY s.id",
    )
    .bind(ids)
    .fetch_all(db)
    .await
}
