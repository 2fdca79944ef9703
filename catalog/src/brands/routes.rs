//! HTTP handlers for brands and brand↔category links: reads public, writes admin-only.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use shared::auth::AdminUser;
use shared::error::ErrorBody;
use shared::extract::{AppJson, AppPath, AppQuery};
use shared::pagination::{Page, PageParams};
use uuid::Uuid;

use super::dto::{Brand, BrandList, CreateBrand, UpdateBrand};
use super::service;
use crate::categories::dto::CategoryList;
use crate::error::Result;
use crate::startup::AppState;

#[utoipa::path(post, path = "/api/v1/brands", tag = "brands", security(("bearer" = [])), request_body = CreateBrand,
    responses((status = 201, body = Brand), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppJson(req): AppJson<CreateBrand>,
) -> Result<(StatusCode, Json<Brand>)> {
    Ok((
        StatusCode::CREATED,
        Json(service::create(&state.db, req).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/brands", tag = "brands", params(PageParams),
    responses((status = 200, body = BrandList)))]
pub async fn list(
    State(state): State<AppState>,
    AppQuery(params): AppQuery<PageParams>,
) -> Result<Json<Page<Brand>>> {
    Ok(Json(service::list(&state.db, &params).await?))
}

#[utoipa::path(get, path = "/api/v1/brands/{id}", params(("id" = Uuid, Path)), tag = "brands",
    responses((status = 200, body = Brand), (status = 404, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, AppPath(id): AppPath<Uuid>) -> Result<Json<Brand>> {
    Ok(Json(service::get(&state.db, id).await?))
}

#[utoipa::path(patch, path = "/api/v1/brands/{id}", params(("id" = Uuid, Path)), tag = "brands", security(("bearer" = [])), request_body = UpdateBrand,
    responses((status = 200, body = Brand), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppPath(id): AppPath<Uuid>,
    AppJson(req): AppJson<UpdateBrand>,
) -> Result<Json<Brand>> {
    Ok(Json(service::update(&state.db, id, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/brands/{id}", params(("id" = Uuid, Path)), tag = "brands", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<StatusCode> {
    service::delete(&state.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/brands/{id}/categories", params(("id" = Uuid, Path)), tag = "brands",
    responses((status = 200, body = CategoryList), (status = 404, body = ErrorBody)))]
pub async fn categories(
    State(state): State<AppState>,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<CategoryList>> {
    Ok(Json(CategoryList {
        items: service::categories_of(&state.db, id).await?,
    }))
}

#[utoipa::path(put, path = "/api/v1/brands/{id}/categories/{category_id}", params(("id" = Uuid, Path), ("category_id" = Uuid, Path)), tag = "brands", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn link(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppPath((id, category)): AppPath<(Uuid, Uuid)>,
) -> Result<StatusCode> {
    service::link(&state.db, id, category).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/brands/{id}/categories/{category_id}", params(("id" = Uuid, Path), ("category_id" = Uuid, Path)), tag = "brands", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn unlink(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppPath((id, category)): AppPath<(Uuid, Uuid)>,
) -> Result<StatusCode> {
    service::unlink(&state.db, id, category).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/categories/{id}/brands", params(("id" = Uuid, Path)), tag = "categories",
    responses((status = 200, body = BrandList), (status = 404, body = ErrorBody)))]
pub async fn of_category(
    State(state): State<AppState>,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<BrandList>> {
    Ok(Json(BrandList {
        items: service::brands_in(&state.db, id).await?,
    }))
}
