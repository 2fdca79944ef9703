//! HTTP handlers for categories: reads public, writes admin-only.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use shared::auth::AdminUser;
use shared::error::ErrorBody;
use shared::extract::{AppJson, AppPath, AppQuery};
use shared::pagination::{Page, PageParams};
use uuid::Uuid;

use super::dto::{Category, CategoryList, CategoryNodes, CreateCategory, UpdateCategory};
use super::service;
use crate::error::Result;
use crate::startup::AppState;

#[utoipa::path(post, path = "/api/v1/categories", tag = "categories", security(("bearer" = [])),
    request_body = CreateCategory,
    responses((status = 201, body = Category), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppJson(req): AppJson<CreateCategory>,
) -> Result<(StatusCode, Json<Category>)> {
    Ok((
        StatusCode::CREATED,
        Json(service::create(&state.db, req).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/categories", tag = "categories", params(PageParams),
    responses((status = 200, body = CategoryList)))]
pub async fn list(
    State(state): State<AppState>,
    AppQuery(params): AppQuery<PageParams>,
) -> Result<Json<Page<Category>>> {
    Ok(Json(service::list(&state.db, &params).await?))
}

#[utoipa::path(get, path = "/api/v1/categories/{id}", params(("id" = Uuid, Path)), tag = "categories",
    responses((status = 200, body = Category), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<Category>> {
    Ok(Json(service::get(&state.db, id).await?))
}

#[utoipa::path(get, path = "/api/v1/categories/{id}/children", params(("id" = Uuid, Path)), tag = "categories",
    responses((status = 200, body = CategoryList), (status = 404, body = ErrorBody)))]
pub async fn children(
    State(state): State<AppState>,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<CategoryList>> {
    Ok(Json(CategoryList {
        items: service::children(&state.db, id).await?,
    }))
}

#[utoipa::path(get, path = "/api/v1/categories/{id}/subtree", params(("id" = Uuid, Path)), tag = "categories",
    responses((status = 200, body = CategoryNodes), (status = 404, body = ErrorBody)))]
pub async fn subtree(
    State(state): State<AppState>,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<CategoryNodes>> {
    Ok(Json(CategoryNodes {
        items: service::subtree(&state.db, id).await?,
    }))
}

#[utoipa::path(get, path = "/api/v1/categories/{id}/ancestors", params(("id" = Uuid, Path)), tag = "categories",
    responses((status = 200, body = CategoryNodes), (status = 404, body = ErrorBody)))]
pub async fn ancestors(
    State(state): State<AppState>,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<CategoryNodes>> {
    Ok(Json(CategoryNodes {
        items: service::ancestors(&state.db, id).await?,
    }))
}

#[utoipa::path(patch, path = "/api/v1/categories/{id}", params(("id" = Uuid, Path)), tag = "categories", security(("bearer" = [])),
    request_body = UpdateCategory,
    responses((status = 200, body = Category), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppPath(id): AppPath<Uuid>,
    AppJson(req): AppJson<UpdateCategory>,
) -> Result<Json<Category>> {
    let category = service::update(&state.db, id, req).await?;
    // A category that moved changes which products its ancestors' pages list.
    state.cache.invalidate_lists().await;
    Ok(Json(category))
}

#[utoipa::path(delete, path = "/api/v1/categories/{id}", params(("id" = Uuid, Path)), tag = "categories", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<StatusCode> {
    service::delete(&state.db, id).await?;
    state.cache.invalidate_lists().await;
    Ok(StatusCode::NO_CONTENT)
}
