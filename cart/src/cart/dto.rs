//! Shapes of the cart API. Money is a decimal string with its currency.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Only the SKU and the quantity are read: any price or name a client sends is ignored, the
/// catalog is the only source of those.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({ "sku_id": "01936f0e-5b2a-7c3d-8e4f-a1b2c3d4e5f6", "quantity": 2 }))]
pub struct AddItem {
    pub sku_id: Uuid,
    pub quantity: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({ "quantity": 3 }))]
#[serde(deny_unknown_fields)]
pub struct SetQuantity {
    pub quantity: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CartLine {
    pub sku_id: Uuid,
    pub product_id: Uuid,
    pub product_name: String,
    pub image_url: Option<String>,
    pub quantity: u32,
    #[schema(example = "19.99")]
    pub unit_price: String,
    pub currency: String,
    pub line_total: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Total {
    pub currency: String,
    pub amount: String,
}

/// The whole cart; every write answers with it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CartView {
    pub items: Vec<CartLine>,
    /// For display only, one per currency; the order is priced again by the catalog.
    pub totals: Vec<Total>,
    pub item_count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineStatus {
    Ok,
    PriceChanged,
    Unavailable,
    InsufficientStock,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ValidatedLine {
    pub sku_id: Uuid,
    pub status: LineStatus,
    pub quantity: u32,
    pub snapshot_price: String,
    /// Null when the catalog no longer sells the SKU.
    pub current_price: Option<String>,
    pub currency: String,
    pub available: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Validation {
    pub valid: bool,
    pub items: Vec<ValidatedLine>,
}
