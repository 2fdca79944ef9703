//! Cart's errors, each with a stable code, rendered as the one JSON error body.

use axum::response::{IntoResponse, Response};
use shared::{ApiError, FieldError};

#[derive(Debug, thiserror::Error)]
pub enum CartError {
    #[error("invalid fields")]
    Validation(Vec<FieldError>),
    #[error("cart is full")]
    TooManyLines { max: u32 },
    #[error("quantity over the limit")]
    QuantityLimit { max: u32, would_be: i64 },
    #[error("not enough stock")]
    InsufficientStock { available: i64, requested: i64 },
    #[error("SKU not found")]
    SkuNotFound,
    #[error("SKU unavailable")]
    SkuUnavailable,
    #[error("line not in cart")]
    LineNotFound,
    #[error("catalog unavailable")]
    CatalogUnavailable(#[from] shared::catalog_client::CatalogUnavailable),
    #[error("store unavailable")]
    StoreUnavailable(#[from] redis::RedisError),
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<CartError> for ApiError {
    fn from(e: CartError) -> Self {
        match e {
            CartError::Validation(fields) => ApiError::validation(fields),
            CartError::TooManyLines { max } => ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "CART_LINE_LIMIT",
                format!("a cart holds at most {max} different items"),
            )
            .with_details(serde_json::json!({ "max_lines": max })),
            CartError::QuantityLimit { max, would_be } => ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "CART_QUANTITY_LIMIT",
                format!("a line holds 1 to {max} units"),
            )
            .with_details(serde_json::json!({ "max_quantity": max, "would_be": would_be })),
            CartError::InsufficientStock {
                available,
                requested,
            } => ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "INSUFFICIENT_STOCK",
                "not enough of this item is available",
            )
            .with_details(serde_json::json!({ "available": available, "requested": requested })),
            CartError::SkuNotFound => ApiError::not_found("SKU_NOT_FOUND", "no such item for sale"),
            CartError::SkuUnavailable => ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "SKU_UNAVAILABLE",
                "this item is not for sale right now",
            ),
            CartError::LineNotFound => {
                ApiError::not_found("CART_LINE_NOT_FOUND", "this item is not in the cart")
            }
            CartError::CatalogUnavailable(cause) => {
                let mut e = ApiError::unavailable(
                    "CATALOG_UNAVAILABLE",
                    "prices cannot be checked right now; retry shortly",
                )
                .with_retry_after(2);
                e.source = Some(cause.0);
                e
            }
            CartError::StoreUnavailable(cause) => {
                let mut e = ApiError::unavailable(
                    "CART_STORE_UNAVAILABLE",
                    "the cart cannot be reached right now; retry shortly",
                )
                .with_retry_after(1);
                e.source = Some(cause.into());
                e
            }
            CartError::Api(api) => api,
            CartError::Unexpected(e) => ApiError::internal(e),
        }
    }
}

impl IntoResponse for CartError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

pub type Result<T, E = CartError> = std::result::Result<T, E>;
