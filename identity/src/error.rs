//! Identity's errors, each with a stable code, rendered as the one JSON error body.

use axum::response::{IntoResponse, Response};
use shared::{ApiError, FieldError};

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("invalid fields")]
    Validation(Vec<FieldError>),
    #[error("username taken")]
    UsernameTaken,
    #[error("email taken")]
    EmailTaken,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("too many attempts")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("email not verified")]
    EmailNotVerified,
    #[error("account disabled")]
    AccountDisabled,
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    #[error("refresh token expired")]
    RefreshTokenExpired,
    #[error("refresh token reused")]
    RefreshTokenReused,
    #[error("invalid or expired token")]
    InvalidOneTimeToken,
    #[error("current password incorrect")]
    CurrentPasswordIncorrect,
    #[error("current password required")]
    CurrentPasswordRequired,
    #[error("role change forbidden")]
    RoleChangeForbidden(&'static str),
    #[error("the ADMIN role is granted and removed by an operator only")]
    AdminRoleOperatorOnly,
    #[error("not allowed on own account")]
    SelfAction(&'static str),
    #[error("user not found")]
    UserNotFound,
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for IdentityError {
    fn from(e: sqlx::Error) -> Self {
        IdentityError::Api(ApiError::from(e))
    }
}

impl IdentityError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }
}

impl From<IdentityError> for ApiError {
    fn from(e: IdentityError) -> Self {
        use IdentityError::*;
        match e {
            Validation(fields) => ApiError::validation(fields),
            UsernameTaken => ApiError::conflict("USERNAME_TAKEN", "that username is taken"),
            EmailTaken => ApiError::conflict("EMAIL_TAKEN", "an account with that email exists"),
            InvalidCredentials => {
                ApiError::unauthorized("INVALID_CREDENTIALS", "wrong username or password")
            }
            TooManyAttempts { retry_after_secs } => ApiError::too_many_requests(retry_after_secs),
            EmailNotVerified => ApiError::forbidden(
                "EMAIL_NOT_VERIFIED",
                "verify your email address before logging in",
            ),
            AccountDisabled => ApiError::forbidden("ACCOUNT_DISABLED", "this account is disabled"),
            InvalidRefreshToken => {
                ApiError::unauthorized("INVALID_REFRESH_TOKEN", "the refresh token is not valid")
            }
            RefreshTokenExpired => {
                ApiError::unauthorized("REFRESH_TOKEN_EXPIRED", "the refresh token has expired")
            }
            RefreshTokenReused => ApiError::unauthorized(
                "REFRESH_TOKEN_REUSED",
                "this refresh token was already used; the session has been revoked",
            ),
            InvalidOneTimeToken => ApiError::bad_request(
                "INVALID_OR_EXPIRED_TOKEN",
                "the token is invalid, expired or already used",
            ),
            CurrentPasswordIncorrect => ApiError::forbidden(
                "CURRENT_PASSWORD_INCORRECT",
                "the current password is not correct",
            ),
            CurrentPasswordRequired => ApiError::forbidden(
                "CURRENT_PASSWORD_REQUIRED",
                "changing the email or closing the account needs current_password",
            ),
            RoleChangeForbidden(why) => ApiError::forbidden("ROLE_CHANGE_FORBIDDEN", why),
            AdminRoleOperatorOnly => ApiError::forbidden(
                "ADMIN_ROLE_OPERATOR_ONLY",
                "the ADMIN role is granted and removed only with the operator command",
            ),
            SelfAction(why) => ApiError::forbidden("SELF_ACTION_FORBIDDEN", why),
            UserNotFound => ApiError::not_found("USER_NOT_FOUND", "no such user"),
            Api(api) => api,
            Unexpected(e) if e.is::<crate::password::HasherBusy>() => ApiError::unavailable(
                "SERVER_BUSY",
                "too many password operations are in progress; retry shortly",
            )
            .with_retry_after(1),
            Unexpected(e) => ApiError::internal(e),
        }
    }
}

impl IntoResponse for IdentityError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}
