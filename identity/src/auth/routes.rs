//! HTTP handlers for sessions and credentials.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use shared::auth::AuthUser;
use shared::error::ErrorBody;
use shared::extract::AppJson;

use super::dto::{
    Accepted, ChangePasswordRequest, ForgotPasswordRequest, LoginRequest, RefreshRequest,
    ResendVerificationRequest, ResetPasswordRequest, TokenResponse, VerifyEmailRequest,
};
use super::service;
use crate::error::IdentityError;
use crate::startup::{AppState, ClientIp};

type Result<T> = std::result::Result<T, IdentityError>;

#[utoipa::path(post, path = "/api/v1/users/login", tag = "sessions", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    AppJson(req): AppJson<LoginRequest>,
) -> Result<Json<TokenResponse>> {
    Ok(Json(service::login(&state, req, ip).await?))
}

#[utoipa::path(post, path = "/api/v1/users/refresh", tag = "sessions", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody)))]
pub async fn refresh(
    State(state): State<AppState>,
    AppJson(req): AppJson<RefreshRequest>,
) -> Result<Json<TokenResponse>> {
    Ok(Json(service::refresh(&state, &req.refresh_token).await?))
}

#[utoipa::path(post, path = "/api/v1/users/logout", tag = "sessions", request_body = RefreshRequest,
    responses((status = 204)))]
pub async fn logout(
    State(state): State<AppState>,
    AppJson(req): AppJson<RefreshRequest>,
) -> Result<StatusCode> {
    service::logout(&state, &req.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/users/me/password", tag = "sessions", security(("bearer" = [])), request_body = ChangePasswordRequest,
    responses((status = 204), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn change_password(
    State(state): State<AppState>,
    caller: AuthUser,
    AppJson(req): AppJson<ChangePasswordRequest>,
) -> Result<StatusCode> {
    service::change_password(&state, caller, req).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/users/verify-email", tag = "sessions", request_body = VerifyEmailRequest,
    responses((status = 204), (status = 400, body = ErrorBody)))]
pub async fn verify_email(
    State(state): State<AppState>,
    AppJson(req): AppJson<VerifyEmailRequest>,
) -> Result<StatusCode> {
    service::verify_email(&state, req).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/users/forgot-password", tag = "sessions", request_body = ForgotPasswordRequest,
    responses((status = 202, description = "The same answer whether or not a verified account uses the address", body = Accepted),
        (status = 422, body = ErrorBody), (status = 429, description = "Throttled per address and per client; `Retry-After`", body = ErrorBody)))]
pub async fn forgot_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    AppJson(req): AppJson<ForgotPasswordRequest>,
) -> Result<(StatusCode, Json<Accepted>)> {
    service::forgot_password(&state, req, ip).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            status: "accepted",
            message: "if an account uses that address, a reset link is on its way",
        }),
    ))
}

#[utoipa::path(post, path = "/api/v1/users/resend-verification", tag = "sessions", request_body = ResendVerificationRequest,
    responses((status = 202, description = "The same answer whether or not an unverified account uses the address", body = Accepted),
        (status = 422, body = ErrorBody), (status = 429, description = "Throttled per address and per client; `Retry-After`", body = ErrorBody)))]
pub async fn resend_verification(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    AppJson(req): AppJson<ResendVerificationRequest>,
) -> Result<(StatusCode, Json<Accepted>)> {
    service::resend_verification(&state, req, ip).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            status: "accepted",
            message:
                "if an unverified account uses that address, a verification link is on its way",
        }),
    ))
}

#[utoipa::path(post, path = "/api/v1/users/reset-password", tag = "sessions", request_body = ResetPasswordRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, description = "`SERVER_BUSY`: the password hashing queue is full; `Retry-After`", body = ErrorBody)))]
pub async fn reset_password(
    State(state): State<AppState>,
    AppJson(req): AppJson<ResetPasswordRequest>,
) -> Result<StatusCode> {
    service::reset_password(&state, req).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "sessions",
    responses((status = 200, description = "The public key set that verifies access tokens")))]
pub async fn jwks(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.signer.jwks())
}
