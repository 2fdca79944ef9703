//! Order's routes and its OpenAPI document.

use axum::routing::{get, post};
use axum::Router;
use shared::server::BearerAuth;
use utoipa::OpenApi;

use crate::orders::routes as o;
use crate::startup::AppState;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/orders", get(o::list).post(o::place))
        .route("/api/v1/orders/seller/me", get(o::seller_me))
        .route("/api/v1/orders/{id}", get(o::get))
        .route("/api/v1/orders/{id}/cancel", post(o::cancel))
        .route("/api/v1/orders/{id}/ship", post(o::ship))
        .route("/api/v1/orders/{id}/deliver", post(o::deliver))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Koupang order", description = "Order placement, the buyer's and sellers' views of orders, and their lifecycle."),
    paths(o::place, o::list, o::seller_me, o::get, o::cancel, o::ship, o::deliver),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
