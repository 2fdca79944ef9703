//! Request and answer shapes of the session and credential endpoints.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({ "username": "alice", "password": "Sup3r-secret!" }))]
pub struct LoginRequest {
    /// Username or email.
    #[schema(example = "alice")]
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({ "refresh_token": "Nb5drRy88lo-hjSYvF8KjCquAkUR-6YO__yLk4nL95I" }))]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({
    "current_password": "Sup3r-secret!",
    "new_password": "N3w-passphrase!"
}))]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({ "token": "kELFwSO4i3rG9yvtFQrlKcGcIwtA8z9gC1Rzb__navM" }))]
pub struct VerifyEmailRequest {
    pub token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({ "email": "alice@example.com" }))]
pub struct ForgotPasswordRequest {
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({ "email": "alice@example.com" }))]
pub struct ResendVerificationRequest {
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({
    "token": "cIGX3izRUC8gaJt5WT01FQ9gHxgP6FQbKhE10xbpRd8",
    "new_password": "N3w-passphrase!"
}))]
pub struct ResetPasswordRequest {
    pub token: String,
    pub new_password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    pub status: &'static str,
    pub message: &'static str,
}
