//! HTTP handlers of the cart: every one needs a buyer's token and acts on that buyer's cart.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use shared::auth::AuthUser;
use shared::error::ErrorBody;
use shared::extract::{AppJson, AppPath};
use uuid::Uuid;

use super::dto::{AddItem, CartView, SetQuantity, Validation};
use super::service;
use crate::error::Result;
use crate::startup::AppState;

#[utoipa::path(get, path = "/api/v1/cart", tag = "cart", security(("bearer" = [])),
    responses((status = 200, body = CartView), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, caller: AuthUser) -> Result<Json<CartView>> {
    let buyer = service::buyer(&caller)?;
    Ok(Json(service::get(&state, buyer).await?))
}

#[utoipa::path(post, path = "/api/v1/cart/items", tag = "cart", security(("bearer" = [])), request_body = AddItem,
    responses((status = 200, body = CartView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn add(
    State(state): State<AppState>,
    caller: AuthUser,
    AppJson(req): AppJson<AddItem>,
) -> Result<Json<CartView>> {
    let buyer = service::buyer(&caller)?;
    Ok(Json(service::add(&state, buyer, req).await?))
}

#[utoipa::path(put, path = "/api/v1/cart/items/{sku_id}", params(("sku_id" = Uuid, Path)), tag = "cart", security(("bearer" = [])), request_body = SetQuantity,
    responses((status = 200, body = CartView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn set(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath(sku): AppPath<Uuid>,
    AppJson(req): AppJson<SetQuantity>,
) -> Result<Json<CartView>> {
    let buyer = service::buyer(&caller)?;
    Ok(Json(service::set(&state, buyer, sku, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/cart/items/{sku_id}", params(("sku_id" = Uuid, Path)), tag = "cart", security(("bearer" = [])),
    responses((status = 200, body = CartView), (status = 404, body = ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath(sku): AppPath<Uuid>,
) -> Result<Json<CartView>> {
    let buyer = service::buyer(&caller)?;
    Ok(Json(service::remove(&state, buyer, sku).await?))
}

#[utoipa::path(delete, path = "/api/v1/cart", tag = "cart", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn clear(State(state): State<AppState>, caller: AuthUser) -> Result<StatusCode> {
    let buyer = service::buyer(&caller)?;
    service::clear(&state, buyer).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/cart/validate", tag = "cart", security(("bearer" = [])),
    responses((status = 200, body = Validation), (status = 503, body = ErrorBody)))]
pub async fn validate(State(state): State<AppState>, caller: AuthUser) -> Result<Json<Validation>> {
    let buyer = service::buyer(&caller)?;
    Ok(Json(service::validate(&state, buyer).await?))
}
