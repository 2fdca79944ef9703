//! Payment's errors, each with a stable code, rendered as the one JSON error body.

use axum::response::{IntoResponse, Response};
use shared::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("payment not found")]
    NotFound,
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<sqlx::Error> for PaymentError {
    fn from(e: sqlx::Error) -> Self {
        PaymentError::Api(ApiError::from(e))
    }
}

impl From<PaymentError> for ApiError {
    fn from(e: PaymentError) -> Self {
        match e {
            PaymentError::NotFound => {
                ApiError::not_found("PAYMENT_NOT_FOUND", "no payment for this order")
            }
            PaymentError::Api(api) => api,
        }
    }
}

impl IntoResponse for PaymentError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

pub type Result<T, E = PaymentError> = std::result::Result<T, E>;
