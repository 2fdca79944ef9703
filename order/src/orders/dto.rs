//! Shapes of the order API. Money is a decimal string with the order's currency.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::domain::{PaymentStatus, Status};

/// A line as the client asks for it: only the SKU and the quantity are read. Anything else a
/// client sends (a `unit_price`, a `total_amount`) is ignored: prices come from the catalog.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct LineRequest {
    pub sku_id: Uuid,
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ShippingAddress {
    pub name: String,
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub city: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 (`"US"`, `"KR"`).
    pub country: String,
}

/// `POST /orders`: either `items` or `"from_cart": true`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(example = json!({
    "items": [
        { "sku_id": "01936f0e-5b2a-7c3d-8e4f-a1b2c3d4e5f6", "quantity": 2 },
        { "sku_id": "01936f0e-9c41-7a2b-b5d6-3e8f1a2b4c7d", "quantity": 1 }
    ],
    "shipping_address": {
        "name": "Alice Kim",
        "line1": "350 Fifth Avenue",
        "line2": "Suite 2100",
        "city": "New York",
        "postal_code": "10118",
        "country": "US"
    },
    "payment_method": "tok_visa"
}))]
pub struct PlaceOrder {
    #[serde(default)]
    pub items: Option<Vec<LineRequest>>,
    #[serde(default)]
    pub from_cart: bool,
    pub shipping_address: ShippingAddress,
    /// A payment token from the storefront's payment form (`tok_...`), never card data.
    #[schema(example = "tok_visa")]
    pub payment_method: String,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({ "reason": "Ordered the wrong size; will reorder in M." }))]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Free text kept as a note on the order (at most 500 characters).
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(example = json!({ "tracking_number": "1Z999AA10123456784" }))]
#[serde(deny_unknown_fields)]
pub struct ShipRequest {
    pub tracking_number: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderItem {
    pub sku_id: Uuid,
    pub product_id: Uuid,
    pub product_name: String,
    pub seller_id: Uuid,
    pub quantity: u32,
    #[schema(example = "19.99")]
    pub unit_price: String,
    pub line_total: String,
    pub shipped_at: Option<DateTime<Utc>>,
    pub tracking_number: Option<String>,
}

/// One entry of the order's history: a transition, or an event that arrived for a state that no
/// longer accepted it (`ignored: true`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub status: Status,
    pub payment_status: PaymentStatus,
    pub at: DateTime<Utc>,
    /// `placed`, `cancel`, `ship`, `deliver`, `deadline`, or the event type that caused it.
    pub trigger: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub ignored: bool,
}

/// The whole order, as its buyer and admins see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Order {
    pub id: Uuid,
    pub buyer_id: Uuid,
    pub status: Status,
    pub payment_status: PaymentStatus,
    #[schema(example = "40.00")]
    pub total_amount: String,
    pub currency: String,
    pub items: Vec<OrderItem>,
    pub shipping_address: ShippingAddress,
    pub payment_method: String,
    /// Why the order was cancelled (`buyer_requested`, `payment_timeout`, ...), else null.
    pub cancel_reason: Option<String>,
    /// The free text given when cancelling.
    pub cancel_note: Option<String>,
    /// When an unpaid order will be cancelled; null once paid or finished.
    pub payment_deadline: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub status_history: Vec<HistoryEntry>,
}

/// An order as one of its sellers sees it: only that seller's lines and their subtotal, never the
/// buyer's other lines, the order total or the payment method.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SellerOrder {
    pub id: Uuid,
    pub status: Status,
    pub payment_status: PaymentStatus,
    pub currency: String,
    pub items: Vec<OrderItem>,
    pub subtotal: String,
    pub shipping_address: ShippingAddress,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An order in the buyer's list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderSummary {
    pub id: Uuid,
    pub status: Status,
    pub payment_status: PaymentStatus,
    pub total_amount: String,
    pub currency: String,
    pub item_count: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    pub items: Vec<OrderSummary>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SellerOrderPage {
    pub items: Vec<SellerOrder>,
    pub next_cursor: Option<String>,
}

/// What an order (or a seller's view of it) looks like to the caller.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum OrderView {
    Full(Box<Order>),
    Seller(Box<SellerOrder>),
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Only orders in this status.
    pub status: Option<String>,
    /// 1–100, default 20.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}
