//! Identity's routes and its OpenAPI document.

use axum::routing::{get, post, put};
use axum::Router;
use shared::server::BearerAuth;
use utoipa::OpenApi;

use crate::startup::AppState;
use crate::{auth, users};

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/users/register", post(users::routes::register))
        .route("/api/v1/users/login", post(auth::routes::login))
        .route("/api/v1/users/refresh", post(auth::routes::refresh))
        .route("/api/v1/users/logout", post(auth::routes::logout))
        .route(
            "/api/v1/users/me",
            get(users::routes::get_me)
                .patch(users::routes::patch_me)
                .delete(users::routes::delete_me),
        )
        .route(
            "/api/v1/users/me/password",
            post(auth::routes::change_password),
        )
        .route(
            "/api/v1/users/verify-email",
            post(auth::routes::verify_email),
        )
        .route(
            "/api/v1/users/forgot-password",
            post(auth::routes::forgot_password),
        )
        .route(
            "/api/v1/users/resend-verification",
            post(auth::routes::resend_verification),
        )
        .route(
            "/api/v1/users/reset-password",
            post(auth::routes::reset_password),
        )
        .route("/api/v1/users", get(users::routes::list_users))
        .route("/api/v1/users/{id}", get(users::routes::get_user))
        .route("/api/v1/users/{id}/role", put(users::routes::change_role))
        .route(
            "/api/v1/users/{id}/deactivate",
            post(users::routes::deactivate),
        )
        .route("/api/v1/users/{id}/activate", post(users::routes::activate))
        .route("/.well-known/jwks.json", get(auth::routes::jwks))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Koupang identity", description = "Users, roles, sessions and credentials."),
    paths(
        users::routes::register,
        users::routes::get_me,
        users::routes::patch_me,
        users::routes::delete_me,
        users::routes::list_users,
        users::routes::get_user,
        users::routes::change_role,
        users::routes::deactivate,
        users::routes::activate,
        auth::routes::login,
        auth::routes::refresh,
        auth::routes::logout,
        auth::routes::change_password,
        auth::routes::verify_email,
        auth::routes::forgot_password,
        auth::routes::resend_verification,
        auth::routes::reset_password,
        auth::routes::jwks,
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
