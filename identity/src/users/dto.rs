//! Request and answer shapes of the user endpoints.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use shared::auth::Role;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::repository::UserRow;

/// Fields are optional in the shape so that a missing one is reported per field (422), not as an
/// undecodable body.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({
    "username": "alice",
    "email": "alice@example.com",
    "password": "Sup3r-secret!",
    "phone": "+1 555-010-9999",
    "role": "BUYER"
}))]
#[serde(default)]
pub struct RegisterRequest {
    #[schema(example = "alice")]
    pub username: Option<String>,
    #[schema(example = "alice@example.com")]
    pub email: Option<String>,
    #[schema(example = "Sup3r-secret!")]
    pub password: Option<String>,
    pub phone: Option<String>,
    /// `BUYER` or `SELLER`.
    #[schema(example = "BUYER")]
    pub role: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserResponse {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub phone: Option<String>,
    pub role: Role,
    pub email_verified: bool,
    /// A new address waiting for verification; `email` stays in use until then.
    pub pending_email: Option<String>,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for UserResponse {
    type Error = crate::error::IdentityError;

    /// The database CHECK allows only the three roles; a stored value outside them is corruption
    /// and an error, never read as some default role.
    fn try_from(u: UserRow) -> Result<Self, Self::Error> {
        let role = Role::parse(&u.role).ok_or_else(|| {
            crate::error::IdentityError::Unexpected(anyhow::anyhow!(
                "user {} has the unknown stored role '{}'",
                u.id,
                u.role
            ))
        })?;
        Ok(Self {
            id: u.id,
            username: u.username,
            email: u.email,
            phone: u.phone,
            role,
            email_verified: u.email_verified_at.is_some(),
            pending_email: u.pending_email,
            status: u.status,
            created_at: u.created_at,
        })
    }
}

/// `PATCH /users/me`: every field optional; `phone: null` clears the phone. A `role` here is refused.
/// A new `email` needs `current_password`, and takes effect only once the new address is verified
/// (until then it is answered as `pending_email`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({
    "username": "alice_kim",
    "email": "alice.kim@example.com",
    "current_password": "Sup3r-secret!",
    "phone": "+82 10-1234-5678"
}))]
#[serde(default)]
pub struct UpdateMeRequest {
    pub username: Option<String>,
    pub email: Option<String>,
    /// Required when `email` changes.
    pub current_password: Option<String>,
    #[serde(deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    /// Any `role` key, even `null`, is refused: a user never changes their own role.
    #[serde(deserialize_with = "present_any")]
    #[schema(value_type = Option<String>)]
    pub role: Option<serde_json::Value>,
}

/// Tells "absent" (None) from "null" (Some(None)).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn present_any<'de, D: Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

/// `DELETE /users/me`: closing the account needs the current password, not only a token.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({ "current_password": "Sup3r-secret!" }))]
#[serde(default)]
pub struct DeleteMeRequest {
    pub current_password: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({ "role": "SELLER" }))]
pub struct ChangeRoleRequest {
    #[schema(example = "SELLER")]
    pub role: String,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListUsersQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    /// `BUYER`, `SELLER` or `ADMIN`.
    pub role: Option<String>,
    /// `active`, `deactivated` or `deleted`.
    pub status: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserResponse>,
    pub next_cursor: Option<String>,
}
