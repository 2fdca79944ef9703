//! HTTP handlers of the order API (contract §6).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use shared::auth::AuthUser;
use shared::error::ErrorBody;
use shared::extract::{AppJson, AppPath, AppQuery, OptionalJson};
use uuid::Uuid;

use super::dto::*;
use super::service;
use crate::error::Result;
use crate::startup::AppState;

fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or_default()
}

#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "1–255 printable characters, unique per purchase; a retry reuses it")),
    request_body = PlaceOrder,
    responses((status = 202, body = Order, description = "Placed (or, for a retry, the order the key placed) and pending"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn place(
    State(state): State<AppState>,
    caller: AuthUser,
    headers: HeaderMap,
    AppJson(req): AppJson<PlaceOrder>,
) -> Result<(StatusCode, Json<Order>)> {
    caller.require(&[shared::auth::Role::Buyer])?;
    let key = service::idempotency_key(headers.get("idempotency-key"))?;
    let placement = service::validate(&req)?;
    let order = service::place(&state, &caller, bearer(&headers), &key, placement).await?;
    Ok((StatusCode::ACCEPTED, Json(order)))
}

#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = OrderPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
    AppQuery(q): AppQuery<ListQuery>,
) -> Result<Json<OrderPage>> {
    Ok(Json(service::list_mine(&state, &caller, &q).await?))
}

#[utoipa::path(get, path = "/api/v1/orders/seller/me", tag = "orders", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = SellerOrderPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn seller_me(
    State(state): State<AppState>,
    caller: AuthUser,
    AppQuery(q): AppQuery<ListQuery>,
) -> Result<Json<SellerOrderPage>> {
    Ok(Json(service::list_seller(&state, &caller, &q).await?))
}

#[utoipa::path(get, path = "/api/v1/orders/{id}", params(("id" = Uuid, Path)), tag = "orders", security(("bearer" = [])),
    responses((status = 200, body = OrderView, description = "The whole order for its buyer and admins; a seller's own lines for a seller in it"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<OrderView>> {
    Ok(Json(service::get(&state, &caller, id).await?))
}

#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", params(("id" = Uuid, Path)), tag = "orders", security(("bearer" = [])),
    request_body(content = CancelRequest, description = "Optional"),
    responses((status = 202, body = Order), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "ORDER_NOT_CANCELLABLE: shipped, delivered or already cancelled"), (status = 422, body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath(id): AppPath<Uuid>,
    OptionalJson(req): OptionalJson<CancelRequest>,
) -> Result<(StatusCode, Json<Order>)> {
    let order = service::cancel(&state, &caller, id, req).await?;
    Ok((StatusCode::ACCEPTED, Json(order)))
}

#[utoipa::path(post, path = "/api/v1/orders/{id}/ship", params(("id" = Uuid, Path)), tag = "orders", security(("bearer" = [])),
    request_body(content = ShipRequest, description = "Optional"),
    responses((status = 200, body = SellerOrder), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "ORDER_NOT_SHIPPABLE: not confirmed"), (status = 422, body = ErrorBody)))]
pub async fn ship(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath(id): AppPath<Uuid>,
    OptionalJson(req): OptionalJson<ShipRequest>,
) -> Result<Json<SellerOrder>> {
    Ok(Json(service::ship(&state, &caller, id, req).await?))
}

#[utoipa::path(post, path = "/api/v1/orders/{id}/deliver", params(("id" = Uuid, Path)), tag = "orders", security(("bearer" = [])),
    responses((status = 200, body = Order), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "ORDER_NOT_DELIVERABLE: not shipped")))]
pub async fn deliver(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<Order>> {
    Ok(Json(service::deliver(&state, &caller, id).await?))
}
