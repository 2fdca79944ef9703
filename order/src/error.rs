//! Order's errors, each with a stable code, rendered as the one JSON error body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shared::{ApiError, FieldError};
use uuid::Uuid;

use crate::orders::domain::Status;

/// A requested line the catalog will not sell now (placement answers `422` naming them all).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UnavailableLine {
    pub sku_id: Uuid,
    /// `unknown` (no such SKU for sale), `inactive` (SKU or product not active),
    /// `insufficient_stock` (fewer available than requested right now).
    pub reason: &'static str,
    pub requested: u32,
    pub available: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("invalid fields")]
    Validation(Vec<FieldError>),
    #[error("Idempotency-Key header missing")]
    IdempotencyKeyRequired,
    #[error("Idempotency-Key header invalid")]
    IdempotencyKeyInvalid,
    #[error("Idempotency-Key reused with another request")]
    IdempotencyKeyReused { order_id: Uuid },
    #[error("lines unavailable")]
    LinesUnavailable(Vec<UnavailableLine>),
    #[error("mixed currencies")]
    MixedCurrencies(Vec<String>),
    #[error("cart empty")]
    CartEmpty,
    #[error("catalog unavailable")]
    CatalogUnavailable(#[from] shared::catalog_client::CatalogUnavailable),
    #[error("cart unavailable")]
    CartUnavailable(anyhow::Error),
    #[error("{} orders in flight, limit {}", .0.in_flight, .0.limit)]
    Busy(crate::orders::admission::Busy),
    #[error("order not found")]
    NotFound,
    #[error("order is {0:?}")]
    NotCancellable(Status),
    #[error("order is {0:?}")]
    NotShippable(Status),
    #[error("order is {0:?}")]
    NotDeliverable(Status),
    #[error("payment is {0:?}")]
    PaymentNotCaptured(crate::orders::domain::PaymentStatus),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for OrderError {
    fn from(e: sqlx::Error) -> Self {
        OrderError::Api(ApiError::from(e))
    }
}

impl OrderError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }
}

fn state_conflict(code: &'static str, message: &str, status: Status) -> ApiError {
    ApiError::conflict(
        code,
        format!("{message} (the order is {})", status.as_str()),
    )
    .with_details(serde_json::json!({ "status": status.as_str() }))
}

impl From<OrderError> for ApiError {
    fn from(e: OrderError) -> Self {
        let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
        match e {
            OrderError::Validation(fields) => ApiError::validation(fields),
            OrderError::IdempotencyKeyRequired => ApiError::bad_request(
                "IDEMPOTENCY_KEY_REQUIRED",
                "placing an order needs an `Idempotency-Key` header (a value unique to this \
                 purchase, reused only when retrying it)",
            ),
            OrderError::IdempotencyKeyInvalid => ApiError::bad_request(
                "INVALID_IDEMPOTENCY_KEY",
                "the `Idempotency-Key` header must be 1 to 255 printable ASCII characters",
            ),
            OrderError::IdempotencyKeyReused { order_id } => ApiError::new(
                unprocessable,
                "IDEMPOTENCY_KEY_REUSED",
                "this Idempotency-Key was used for a different order request; use a new key for a new purchase",
            )
            .with_details(serde_json::json!({ "order_id": order_id })),
            OrderError::LinesUnavailable(lines) => ApiError::new(
                unprocessable,
                "ORDER_LINES_UNAVAILABLE",
                "some items cannot be ordered right now",
            )
            .with_details(serde_json::json!({ "lines": lines })),
            OrderError::MixedCurrencies(currencies) => ApiError::new(
                unprocessable,
                "MIXED_CURRENCIES",
                "one order is paid in one currency; place one order per currency",
            )
            .with_details(serde_json::json!({ "currencies": currencies })),
            OrderError::CartEmpty => {
                ApiError::new(unprocessable, "CART_EMPTY", "the cart has nothing to order")
            }
            OrderError::CatalogUnavailable(cause) => {
                let mut e = ApiError::unavailable(
                    "CATALOG_UNAVAILABLE",
                    "prices cannot be checked right now; nothing was ordered, retry shortly",
                )
                .with_retry_after(2);
                e.source = Some(cause.0);
                e
            }
            OrderError::Busy(_) => ApiError::unavailable(
                "ORDERS_BUSY",
                "too many orders are being processed right now; nothing was ordered, retry shortly",
            )
            .with_retry_after(1),
            OrderError::CartUnavailable(cause) => {
                let mut e = ApiError::unavailable(
                    "CART_UNAVAILABLE",
                    "the cart cannot be read right now; nothing was ordered, retry shortly",
                )
                .with_retry_after(2);
                e.source = Some(cause);
                e
            }
            OrderError::NotFound => ApiError::not_found("ORDER_NOT_FOUND", "no such order"),
            OrderError::NotCancellable(s) => state_conflict(
                "ORDER_NOT_CANCELLABLE",
                "only an order that has not shipped can be cancelled",
                s,
            ),
            OrderError::NotShippable(s) => state_conflict(
                "ORDER_NOT_SHIPPABLE",
                "only a confirmed order can be shipped",
                s,
            ),
            OrderError::NotDeliverable(s) => state_conflict(
                "ORDER_NOT_DELIVERABLE",
                "only a shipped order can be marked delivered",
                s,
            ),
            OrderError::PaymentNotCaptured(p) => ApiError::conflict(
                "ORDER_NOT_SHIPPABLE",
                format!(
                    "the order's payment is not captured yet (it is {}); ship once it is",
                    p.as_str()
                ),
            )
            .with_details(serde_json::json!({ "status": "confirmed", "payment_status": p.as_str() })),
            OrderError::Api(api) => api,
            OrderError::Unexpected(e) => ApiError::internal(e),
        }
    }
}

impl IntoResponse for OrderError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

pub type Result<T, E = OrderError> = std::result::Result<T, E>;
