//! HTTP handlers for accounts: extract, delegate to the service, answer.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use shared::auth::{AdminUser, AuthUser};
use shared::error::ErrorBody;
use shared::extract::{AppJson, AppPath, AppQuery};
use uuid::Uuid;

use super::dto::{
    ChangeRoleRequest, DeleteMeRequest, ListUsersQuery, RegisterRequest, UpdateMeRequest, UserPage,
    UserResponse,
};
use super::service;
use crate::error::IdentityError;
use crate::startup::AppState;

type Result<T> = std::result::Result<T, IdentityError>;

#[utoipa::path(post, path = "/api/v1/users/register", tag = "users", request_body = RegisterRequest,
    responses((status = 201, body = UserResponse), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn register(
    State(state): State<AppState>,
    AppJson(req): AppJson<RegisterRequest>,
) -> Result<(StatusCode, Json<UserResponse>)> {
    Ok((
        StatusCode::CREATED,
        Json(service::register(&state, req).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserResponse), (status = 401, body = ErrorBody)))]
pub async fn get_me(State(state): State<AppState>, caller: AuthUser) -> Result<Json<UserResponse>> {
    Ok(Json(service::me(&state, caller).await?))
}

#[utoipa::path(patch, path = "/api/v1/users/me", tag = "users", security(("bearer" = [])), request_body = UpdateMeRequest,
    responses((status = 200, description = "Applied; a new email is answered as `pending_email` until verified", body = UserResponse),
        (status = 403, description = "`CURRENT_PASSWORD_REQUIRED` / `CURRENT_PASSWORD_INCORRECT` for an email change, or `ROLE_CHANGE_FORBIDDEN`", body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn patch_me(
    State(state): State<AppState>,
    caller: AuthUser,
    AppJson(req): AppJson<UpdateMeRequest>,
) -> Result<Json<UserResponse>> {
    Ok(Json(service::update_me(&state, caller, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/users/me", tag = "users", security(("bearer" = [])), request_body = DeleteMeRequest,
    responses((status = 204), (status = 401, body = ErrorBody),
        (status = 403, description = "`CURRENT_PASSWORD_REQUIRED` or `CURRENT_PASSWORD_INCORRECT`", body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn delete_me(
    State(state): State<AppState>,
    caller: AuthUser,
    AppJson(req): AppJson<DeleteMeRequest>,
) -> Result<StatusCode> {
    service::delete_me(&state, caller, req).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/users", tag = "admin", security(("bearer" = [])), params(ListUsersQuery),
    responses((status = 200, body = UserPage), (status = 403, body = ErrorBody)))]
pub async fn list_users(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppQuery(q): AppQuery<ListUsersQuery>,
) -> Result<Json<UserPage>> {
    let page = service::list_users(&state, q).await?;
    Ok(Json(UserPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", params(("id" = Uuid, Path)), tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = UserResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_user(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<UserResponse>> {
    Ok(Json(service::get_user(&state, id).await?))
}

#[utoipa::path(put, path = "/api/v1/users/{id}/role", params(("id" = Uuid, Path)), tag = "admin", security(("bearer" = [])), request_body = ChangeRoleRequest,
    responses((status = 200, body = UserResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn change_role(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    AppPath(id): AppPath<Uuid>,
    AppJson(req): AppJson<ChangeRoleRequest>,
) -> Result<Json<UserResponse>> {
    Ok(Json(
        service::change_role(&state, admin, id, &req.role).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/users/{id}/deactivate", params(("id" = Uuid, Path)), tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = UserResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn deactivate(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<UserResponse>> {
    Ok(Json(service::set_active(&state, admin, id, false).await?))
}

#[utoipa::path(post, path = "/api/v1/users/{id}/activate", params(("id" = Uuid, Path)), tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = UserResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn activate(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    AppPath(id): AppPath<Uuid>,
) -> Result<Json<UserResponse>> {
    Ok(Json(service::set_active(&state, admin, id, true).await?))
}
