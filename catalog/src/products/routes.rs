//! HTTP handlers for products, SKUs, images, the listing and the batch SKU lookup.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use shared::auth::{AuthUser, MaybeUser};
use shared::error::ErrorBody;
use shared::extract::{AppJson, AppPath, AppQuery};
use shared::pagination::Page;
use uuid::Uuid;

use super::dto::*;
use super::listing::{self, ListQuery};
use super::service;
use crate::error::Result;
use crate::startup::AppState;

#[utoipa::path(get, path = "/api/v1/products", tag = "products", params(ListQuery),
    responses((status = 200, body = ListPage), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    AppQuery(q): AppQuery<ListQuery>,
) -> Result<Json<ListPage>> {
    Ok(Json(listing::list(&state, &q).await?))
}

#[utoipa::path(post, path = "/api/v1/products", tag = "products", security(("bearer" = [])), request_body = CreateProduct,
    responses((status = 201, body = ProductDetail), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: AuthUser,
    AppJson(req): AppJson<CreateProduct>,
) -> Result<(StatusCode, Json<ProductDetail>)> {
    Ok((
        StatusCode::CREATED,
        Json(service::create(&state, &caller, req).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/products/seller/me", tag = "products", security(("bearer" = [])), params(SellerQuery),
    responses((status = 200, body = SellerPage), (status = 403, body = ErrorBody)))]
pub async fn seller_me(
    State(state): State<AppState>,
    caller: AuthUser,
    AppQuery(q): AppQuery<SellerQuery>,
) -> Result<Json<Page<ProductSummary>>> {
    Ok(Json(service::seller_products(&state, &caller, &q).await?))
}

#[utoipa::path(get, path = "/api/v1/products/{id}", params(("id" = Uuid, Path)), tag = "products",
    responses((status = 200, body = ProductDetail), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    MaybeUser(caller): MaybeUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<ProductDetail>> {
    Ok(Json(service::detail(&state, id, caller.as_ref()).await?))
}

#[utoipa::path(get, path = "/api/v1/products/slug/{slug}", params(("slug" = String, Path)), tag = "products",
    responses((status = 200, body = ProductDetail), (status = 404, body = ErrorBody)))]
pub async fn get_by_slug(
    State(state): State<AppState>,
    MaybeUser(caller): MaybeUser,
    AppPath(slug): AppPath<String>,
) -> Result<Json<ProductDetail>> {
    Ok(Json(
        service::detail_by_slug(&state, &slug, caller.as_ref()).await?,
    ))
}

#[utoipa::path(patch, path = "/api/v1/products/{id}", params(("id" = Uuid, Path)), tag = "products", security(("bearer" = [])), request_body = UpdateProduct,
    responses((status = 200, body = ProductDetail), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath(id): AppPath<Uuid>,
    AppJson(req): AppJson<UpdateProduct>,
) -> Result<Json<ProductDetail>> {
    Ok(Json(service::update(&state, &caller, id, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/products/{id}", params(("id" = Uuid, Path)), tag = "products", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<StatusCode> {
    service::delete(&state, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/products/{id}/skus", params(("id" = Uuid, Path)), tag = "skus", security(("bearer" = [])), request_body = CreateSku,
    responses((status = 201, body = Sku), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_sku(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath(id): AppPath<Uuid>,
    AppJson(req): AppJson<CreateSku>,
) -> Result<(StatusCode, Json<Sku>)> {
    Ok((
        StatusCode::CREATED,
        Json(service::create_sku(&state, &caller, id, req).await?),
    ))
}

#[utoipa::path(patch, path = "/api/v1/skus/{id}", params(("id" = Uuid, Path)), tag = "skus", security(("bearer" = [])), request_body = UpdateSku,
    responses((status = 200, body = Sku), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_sku(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath(id): AppPath<Uuid>,
    AppJson(req): AppJson<UpdateSku>,
) -> Result<Json<Sku>> {
    Ok(Json(service::update_sku(&state, &caller, id, req).await?))
}

#[utoipa::path(post, path = "/api/v1/skus/{id}/stock", params(("id" = Uuid, Path)), tag = "skus", security(("bearer" = [])), request_body = StockChange,
    responses((status = 200, body = Sku), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn change_stock(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath(id): AppPath<Uuid>,
    AppJson(req): AppJson<StockChange>,
) -> Result<Json<Sku>> {
    Ok(Json(service::change_stock(&state, &caller, id, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/skus/{id}", params(("id" = Uuid, Path)), tag = "skus", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_sku(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<StatusCode> {
    service::delete_sku(&state, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/skus", tag = "skus", params(SkuIdsQuery),
    responses((status = 200, body = SkuLookupList), (status = 422, body = ErrorBody)))]
pub async fn lookup(
    State(state): State<AppState>,
    AppQuery(q): AppQuery<SkuIdsQuery>,
) -> Result<Json<SkuLookupList>> {
    Ok(Json(service::lookup(&state, &q.ids).await?))
}

#[utoipa::path(post, path = "/api/v1/products/{id}/images", params(("id" = Uuid, Path)), tag = "images", security(("bearer" = [])), request_body = CreateImage,
    responses((status = 201, body = Image), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_image(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath(id): AppPath<Uuid>,
    AppJson(req): AppJson<CreateImage>,
) -> Result<(StatusCode, Json<Image>)> {
    Ok((
        StatusCode::CREATED,
        Json(service::add_image(&state, &caller, id, req).await?),
    ))
}

#[utoipa::path(patch, path = "/api/v1/products/{id}/images/{image_id}", params(("id" = Uuid, Path), ("image_id" = Uuid, Path)), tag = "images", security(("bearer" = [])), request_body = UpdateImage,
    responses((status = 200, body = Image), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_image(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath((id, image_id)): AppPath<(Uuid, Uuid)>,
    AppJson(req): AppJson<UpdateImage>,
) -> Result<Json<Image>> {
    Ok(Json(
        service::update_image(&state, &caller, id, image_id, req).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/products/{id}/images/{image_id}", params(("id" = Uuid, Path), ("image_id" = Uuid, Path)), tag = "images", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_image(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath((id, image_id)): AppPath<(Uuid, Uuid)>,
) -> Result<StatusCode> {
    service::delete_image(&state, &caller, id, image_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
