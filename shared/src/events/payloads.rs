//! Payloads of the saga's events. Amounts are decimal strings with a currency, never floats;
//! ids are UUIDs; enums are snake_case strings.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Currency;

/// One line of an order with the price the buyer saw (catalog checks it is still current).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub sku_id: Uuid,
    pub product_id: Uuid,
    pub seller_id: Uuid,
    pub product_name: String,
    pub quantity: u32,
    pub unit_price: Decimal,
    pub currency: Currency,
}

/// A SKU and a quantity (reserved, committed, released, or bought).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkuQuantity {
    pub sku_id: Uuid,
    pub quantity: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCreated {
    pub order_id: Uuid,
    pub buyer_id: Uuid,
    pub items: Vec<OrderLine>,
    pub total: Decimal,
    pub currency: Currency,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SellerAmount {
    pub seller_id: Uuid,
    pub amount: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRequested {
    pub order_id: Uuid,
    pub buyer_id: Uuid,
    pub amount: Decimal,
    pub currency: Currency,
    /// The gateway token the buyer chose (`tok_...`).
    pub payment_method: String,
    pub seller_amounts: Vec<SellerAmount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderConfirmed {
    pub order_id: Uuid,
    pub buyer_id: Uuid,
    pub items: Vec<SkuQuantity>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    BuyerRequested,
    PaymentTimeout,
    InventoryUnavailable,
    PaymentFailed,
    CaptureFailed,
    AdminCancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub order_id: Uuid,
    pub buyer_id: Uuid,
    pub reason: CancelReason,
    /// The order status the cancellation left (tells catalog whether stock was committed).
    pub previous_status: String,
    pub items: Vec<SkuQuantity>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryReserved {
    pub order_id: Uuid,
    pub lines: Vec<SkuQuantity>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationFailure {
    InsufficientStock,
    SkuInactive,
    ProductInactive,
    PriceChanged,
    UnknownSku,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedLine {
    pub sku_id: Uuid,
    pub reason: ReservationFailure,
    pub requested: u32,
    pub available: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryReservationFailed {
    pub order_id: Uuid,
    /// The first reason found, for display; every failing line is in `lines`.
    pub reason: ReservationFailure,
    pub lines: Vec<FailedLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryCommitted {
    pub order_id: Uuid,
    pub lines: Vec<SkuQuantity>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryReleased {
    pub order_id: Uuid,
    pub lines: Vec<SkuQuantity>,
    /// True when committed stock went back on the shelf, false when a hold was released.
    pub restocked: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentAuthorized {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub amount: Decimal,
    pub currency: Currency,
    pub gateway_reference: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentFailed {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    /// Machine-readable, e.g. `card_declined`.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentCaptured {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub amount: Decimal,
    pub currency: Currency,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentCaptureFailed {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub reason: String,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentVoided {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub amount: Decimal,
    pub currency: Currency,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRefunded {
    pub order_id: Uuid,
    pub payment_id: Uuid,
    pub amount: Decimal,
    pub currency: Currency,
}
