//! Cart's routes and its OpenAPI document.

use axum::routing::{get, post, put};
use axum::Router;
use shared::server::BearerAuth;
use utoipa::OpenApi;

use crate::cart::routes as c;
use crate::startup::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/cart", get(c::get).delete(c::clear))
        .route("/api/v1/cart/items", post(c::add))
        .route("/api/v1/cart/items/{sku_id}", put(c::set).delete(c::remove))
        .route("/api/v1/cart/validate", post(c::validate))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Koupang cart", description = "One cart per buyer, priced from the catalog."),
    paths(c::get, c::add, c::set, c::remove, c::clear, c::validate),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
