//! Shapes of the product, SKU and image API. Prices are decimal strings with a currency.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::types::Json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::domain::{ProductStatus, SkuStatus};

/// A product row.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct ProductRow {
    pub id: Uuid,
    pub seller_id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub category_id: Option<Uuid>,
    pub brand_id: Option<Uuid>,
    pub status: String,
    pub currency: Option<String>,
    pub min_price: Option<Decimal>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct Sku {
    pub id: Uuid,
    pub product_id: Uuid,
    pub sku_code: String,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String, example = "19.99")]
    pub price: Decimal,
    pub currency: String,
    #[schema(value_type = Object)]
    pub attributes: Json<Value>,
    pub status: String,
    /// Units on the shelf, held ones included. Shown to the owner and admins only (absent from
    /// what the public sees: the counters are the seller's business, `available` is the public's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i32>)]
    pub stock_quantity: Option<i32>,
    /// Units held for unpaid orders. Owner and admins only, like `stock_quantity`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i32>)]
    pub reserved_quantity: Option<i32>,
    /// `stock_quantity - reserved_quantity`: what can still be ordered.
    pub available: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct Image {
    pub id: Uuid,
    pub product_id: Uuid,
    pub url: String,
    pub alt_text: Option<String>,
    pub sort_order: i32,
    pub is_primary: bool,
    pub created_at: DateTime<Utc>,
}

/// A product with its live SKUs and its images: the detail answer, and what the cache holds.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProductDetail {
    pub id: Uuid,
    pub seller_id: Uuid,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub category_id: Option<Uuid>,
    pub brand_id: Option<Uuid>,
    pub status: String,
    /// The currency of every SKU (null until the first SKU).
    pub currency: Option<String>,
    /// Lowest price among active SKUs (null when none is active).
    #[serde(with = "rust_decimal::serde::str_option")]
    #[schema(value_type = Option<String>)]
    pub min_price: Option<Decimal>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub skus: Vec<Sku>,
    pub images: Vec<Image>,
}

impl Sku {
    /// The shelf and held counters (always read from the row; `None` only once trimmed).
    pub fn counters(&self) -> (i32, i32) {
        (
            self.stock_quantity.unwrap_or(0),
            self.reserved_quantity.unwrap_or(0),
        )
    }
}

impl ProductDetail {
    /// What someone who is neither the owner nor an admin sees: each SKU's `available`, not the
    /// shelf and held counters. Applied per caller after the cache (the cached entry is shared).
    pub fn without_counters(mut self) -> Self {
        for s in &mut self.skus {
            s.stock_quantity = None;
            s.reserved_quantity = None;
        }
        self
    }

    pub fn new(p: ProductRow, skus: Vec<Sku>, images: Vec<Image>) -> Self {
        Self {
            min_price: p
                .min_price
                .map(|m| crate::products::service::display_price(m, p.currency.as_deref())),
            id: p.id,
            seller_id: p.seller_id,
            name: p.name,
            slug: p.slug,
            description: p.description,
            category_id: p.category_id,
            brand_id: p.brand_id,
            status: p.status,
            currency: p.currency,
            created_at: p.created_at,
            updated_at: p.updated_at,
            skus,
            images,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({
    "name": "Northpeak Merino Hiking Socks (3-Pack)",
    "description": "Cushioned merino wool crew socks for long days on the trail.",
    "slug": "northpeak-merino-hiking-socks-3-pack",
    "category_id": "01936e8a-2f10-7b4e-9a3c-5d6e7f8a9b0c",
    "brand_id": "01936e8b-4c21-7d5f-8b6a-0c1d2e3f4a5b"
}))]
#[serde(deny_unknown_fields)]
pub struct CreateProduct {
    pub name: String,
    pub description: Option<String>,
    pub slug: Option<String>,
    pub category_id: Option<Uuid>,
    pub brand_id: Option<Uuid>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({
    "description": "Cushioned merino wool crew socks with a reinforced heel and toe.",
    "status": "active"
}))]
#[serde(deny_unknown_fields)]
pub struct UpdateProduct {
    pub name: Option<String>,
    pub slug: Option<String>,
    #[serde(default, deserialize_with = "crate::fields::double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::fields::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub category_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "crate::fields::double_option")]
    #[schema(value_type = Option<Uuid>)]
    pub brand_id: Option<Option<Uuid>>,
    pub status: Option<ProductStatus>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({
    "sku_code": "NP-MERINO-SOCK-M-CHR",
    "price": "34.90",
    "currency": "USD",
    "stock_quantity": 120,
    "attributes": { "size": "M", "color": "charcoal" },
    "status": "active"
}))]
#[serde(deny_unknown_fields)]
pub struct CreateSku {
    pub sku_code: String,
    /// Decimal string, e.g. `"19.99"`.
    pub price: String,
    pub currency: String,
    pub stock_quantity: i64,
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Value>,
    pub status: Option<SkuStatus>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({
    "price": "29.90",
    "status": "active",
    "attributes": { "size": "M", "color": "charcoal" }
}))]
#[serde(deny_unknown_fields)]
pub struct UpdateSku {
    pub price: Option<String>,
    pub status: Option<SkuStatus>,
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Value>,
}

/// Exactly one of `delta` (add or remove units) or `set` (the new shelf count).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({ "delta": 25 }))]
#[serde(deny_unknown_fields)]
pub struct StockChange {
    pub delta: Option<i64>,
    pub set: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({
    "url": "https://img.example/products/northpeak-merino-socks-front.jpg",
    "alt_text": "Three pairs of charcoal merino hiking socks, front view",
    "sort_order": 0,
    "is_primary": true
}))]
#[serde(deny_unknown_fields)]
pub struct CreateImage {
    pub url: String,
    pub alt_text: Option<String>,
    pub sort_order: Option<i32>,
    pub is_primary: Option<bool>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({
    "alt_text": "Charcoal merino hiking sock, side view showing the cushioned heel",
    "sort_order": 1,
    "is_primary": true
}))]
#[serde(deny_unknown_fields)]
pub struct UpdateImage {
    #[serde(default, deserialize_with = "crate::fields::double_option")]
    #[schema(value_type = Option<String>)]
    pub alt_text: Option<Option<String>>,
    pub sort_order: Option<i32>,
    /// `true` makes this the primary image (the previous one stops being primary).
    pub is_primary: Option<bool>,
}

/// One product in the public listing.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct ListItem {
    pub id: Uuid,
    pub seller_id: Uuid,
    pub name: String,
    pub slug: String,
    pub category_id: Option<Uuid>,
    pub brand_id: Option<Uuid>,
    /// The lowest price among the product's active SKUs ("from 9.99").
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub min_price: Decimal,
    pub currency: String,
    pub image_url: Option<String>,
    pub created_at: DateTime<Utc>,
    /// `lower(name)` as Postgres computes it: the name sort's cursor key.
    #[serde(skip)]
    pub sort_name: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ListPage {
    pub items: Vec<ListItem>,
    pub next_cursor: Option<String>,
}

/// A seller's own products (any status).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SellerPage {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<ProductSummary>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct ProductSummary {
    pub id: Uuid,
    pub name: String,
    pub slug: String,
    pub status: String,
    pub currency: Option<String>,
    #[serde(with = "rust_decimal::serde::str_option")]
    #[schema(value_type = Option<String>)]
    pub min_price: Option<Decimal>,
    pub sku_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct SellerQuery {
    /// Only products in this status.
    pub status: Option<ProductStatus>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct SkuIdsQuery {
    /// Comma-separated SKU ids, at most 100.
    pub ids: String,
}

/// What cart and order need to know about a SKU, now.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct SkuLookup {
    pub id: Uuid,
    pub product_id: Uuid,
    pub product_name: String,
    pub seller_id: Uuid,
    pub sku_code: String,
    #[serde(with = "rust_decimal::serde::str")]
    #[schema(value_type = String)]
    pub price: Decimal,
    pub currency: String,
    /// `active` only when both the SKU and its product are active (buyable).
    pub status: String,
    pub available: i32,
    #[schema(value_type = Object)]
    pub attributes: Json<Value>,
    pub image_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SkuLookupList {
    pub items: Vec<SkuLookup>,
}
