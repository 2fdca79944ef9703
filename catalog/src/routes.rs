//! Catalog's routes and its OpenAPI document.

use axum::routing::{get, post, put};
use axum::Router;
use shared::server::BearerAuth;
use utoipa::OpenApi;

use crate::startup::AppState;
use crate::{brands, categories, inventory, products};

pub fn router(state: AppState) -> Router {
    use products::routes as p;
    Router::new()
        .route("/api/v1/products", get(p::list).post(p::create))
        .route("/api/v1/products/seller/me", get(p::seller_me))
        .route("/api/v1/products/slug/{slug}", get(p::get_by_slug))
        .route(
            "/api/v1/products/{id}",
            get(p::get).patch(p::update).delete(p::delete),
        )
        .route("/api/v1/products/{id}/skus", post(p::create_sku))
        .route("/api/v1/products/{id}/images", post(p::add_image))
        .route(
            "/api/v1/products/{id}/images/{image_id}",
            axum::routing::patch(p::update_image).delete(p::delete_image),
        )
        .route("/api/v1/skus", get(p::lookup))
        .route(
            "/api/v1/skus/{id}",
            axum::routing::patch(p::update_sku).delete(p::delete_sku),
        )
        .route("/api/v1/skus/{id}/stock", post(p::change_stock))
        .route(
            "/api/v1/categories",
            get(categories::routes::list).post(categories::routes::create),
        )
        .route(
            "/api/v1/categories/{id}",
            get(categories::routes::get)
                .patch(categories::routes::update)
                .delete(categories::routes::delete),
        )
        .route(
            "/api/v1/categories/{id}/children",
            get(categories::routes::children),
        )
        .route(
            "/api/v1/categories/{id}/subtree",
            get(categories::routes::subtree),
        )
        .route(
            "/api/v1/categories/{id}/ancestors",
            get(categories::routes::ancestors),
        )
        .route(
            "/api/v1/categories/{id}/brands",
            get(brands::routes::of_category),
        )
        .route(
            "/api/v1/brands",
            get(brands::routes::list).post(brands::routes::create),
        )
        .route(
            "/api/v1/brands/{id}",
            get(brands::routes::get)
                .patch(brands::routes::update)
                .delete(brands::routes::delete),
        )
        .route(
            "/api/v1/brands/{id}/categories",
            get(brands::routes::categories),
        )
        .route(
            "/api/v1/brands/{id}/categories/{category_id}",
            put(brands::routes::link).delete(brands::routes::unlink),
        )
        .route("/api/v1/inventory/audit", get(inventory::routes::audit))
        .route(
            "/api/v1/inventory/reservations/{order_id}",
            get(inventory::routes::reservations),
        )
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Koupang catalog", description = "Products, SKUs, images, categories, brands and inventory."),
    paths(
        products::routes::list,
        products::routes::create,
        products::routes::seller_me,
        products::routes::get,
        products::routes::get_by_slug,
        products::routes::update,
        products::routes::delete,
        products::routes::create_sku,
        products::routes::update_sku,
        products::routes::change_stock,
        products::routes::delete_sku,
        products::routes::lookup,
        products::routes::add_image,
        products::routes::update_image,
        products::routes::delete_image,
        categories::routes::create,
        categories::routes::list,
        categories::routes::get,
        categories::routes::children,
        categories::routes::subtree,
        categories::routes::ancestors,
        categories::routes::update,
        categories::routes::delete,
        brands::routes::create,
        brands::routes::list,
        brands::routes::get,
        brands::routes::update,
        brands::routes::delete,
        brands::routes::categories,
        brands::routes::link,
        brands::routes::unlink,
        brands::routes::of_category,
        inventory::routes::audit,
        inventory::routes::reservations,
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
