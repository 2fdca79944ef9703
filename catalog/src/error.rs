//! Catalog's errors, each with a stable code, rendered as the one JSON error body.

use axum::response::{IntoResponse, Response};
use shared::{ApiError, FieldError};

/// What a `404` was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Product,
    Sku,
    Image,
    Category,
    Brand,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("invalid fields")]
    Validation(Vec<FieldError>),
    #[error("{0:?} not found")]
    NotFound(Entity),
    #[error("not the owner")]
    NotOwner,
    #[error("{code}: {message}")]
    Conflict { code: &'static str, message: String },
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for CatalogError {
    fn from(e: sqlx::Error) -> Self {
        CatalogError::Api(ApiError::from(e))
    }
}

impl CatalogError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Validation(fields) => ApiError::validation(fields),
            CatalogError::NotFound(entity) => {
                let (code, message) = match entity {
                    Entity::Product => ("PRODUCT_NOT_FOUND", "no such product"),
                    Entity::Sku => ("SKU_NOT_FOUND", "no such SKU"),
                    Entity::Image => ("IMAGE_NOT_FOUND", "no such image"),
                    Entity::Category => ("CATEGORY_NOT_FOUND", "no such category"),
                    Entity::Brand => ("BRAND_NOT_FOUND", "no such brand"),
                };
                ApiError::not_found(code, message)
            }
            CatalogError::NotOwner => ApiError::forbidden(
                "NOT_PRODUCT_OWNER",
                "only the product's seller or an admin may change it",
            ),
            CatalogError::Conflict { code, message } => ApiError::conflict(code, message),
            CatalogError::Api(api) => api,
            CatalogError::Unexpected(e) => ApiError::internal(e),
        }
    }
}

impl IntoResponse for CatalogError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;
