//! Account rules: registration, the caller's profile, closing an account, and admin management.
//! Uniqueness is the database's job (racing registrations meet at the unique indexes); this layer
//! turns those facts into `409`s.

use shared::auth::{AuthUser, Role};
use shared::db::is_unique_violation;
use shared::pagination::{Page, PageParams};
use shared::FieldError;
use uuid::Uuid;

use super::domain::{self_service_role, Email, Password, Phone, UserStatus, Username};
use super::dto::{DeleteMeRequest, ListUsersQuery, RegisterRequest, UpdateMeRequest, UserResponse};
use super::repository::{self as repo, NewUser, ProfileChanges, UserRow};
use crate::auth::repository as auth_repo;
use crate::error::IdentityError;
use crate::mail::Mail;
use crate::startup::AppState;
use crate::tokens::new_opaque_token;

fn map_unique(e: sqlx::Error) -> IdentityError {
    if is_unique_violation(&e, "users_username_key") {
        IdentityError::UsernameTaken
    } else if is_unique_violation(&e, "users_email_key") {
        IdentityError::EmailTaken
    } else {
        e.into()
    }
}

fn required<'a>(
    v: &'a Option<String>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<&'a str> {
    match v.as_deref() {
        Some(s) if !s.trim().is_empty() => Some(s),
        _ => {
            errors.push(FieldError::new(field, "is required"));
            None
        }
    }
}

fn check<T>(r: Result<T, String>, field: &str, errors: &mut Vec<FieldError>) -> Option<T> {
    r.map_err(|m| errors.push(FieldError::new(field, m))).ok()
}

pub struct Registration {
    pub username: Username,
    pub email: Email,
    pub password: Password,
    pub phone: Option<Phone>,
    pub role: Role,
}

impl Registration {
    pub fn parse(req: &RegisterRequest) -> Result<Self, IdentityError> {
        let mut errors = Vec::new();
        let username = required(&req.username, "username", &mut errors)
            .and_then(|v| check(Username::parse(v), "username", &mut errors));
        let email = required(&req.email, "email", &mut errors)
            .and_then(|v| check(Email::parse(v), "email", &mut errors));
        let password = required(&req.password, "password", &mut errors)
            .and_then(|v| check(Password::parse(v), "password", &mut errors));
        let phone = match req.phone.as_deref() {
            Some(p) if !p.trim().is_empty() => {
                check(Phone::parse(p), "phone", &mut errors).map(Some)
            }
            _ => Some(None),
        };
        let role = required(&req.role, "role", &mut errors)
            .and_then(|v| check(self_service_role(v), "role", &mut errors));
        match (username, email, password, phone, role) {
            (Some(username), Some(email), Some(password), Some(phone), Some(role))
                if errors.is_empty() =>
            {
                Ok(Self {
                    username,
                    email,
                    password,
                    phone,
                    role,
                })
            }
            _ => Err(IdentityError::Validation(errors)),
        }
    }
}

/// Create an account (any role, pre-verified or not): the one path used by registration, the
/// operator command and the seed.
pub async fn create_user(
    state: &AppState,
    r: &Registration,
    email_verified: bool,
) -> Result<UserRow, IdentityError> {
    let hash = state.hasher.hash(r.password.expose()).await?;
    let mut tx = state.db.begin().await?;
    // An unverified account past its time no longer holds its email or username.
    let expired = repo::expire_unverified_holding(
        &mut *tx,
        r.username.as_str(),
        r.email.as_str(),
        state.config.unverified_ttl_secs(),
    )
    .await?;
    for &id in &expired {
        auth_repo::revoke_all_sessions(&mut *tx, id, "account_expired").await?;
        auth_repo::delete_user_tokens(&mut *tx, id).await?;
    }
    let user = repo::insert(
        &mut *tx,
        &NewUser {
            id: shared::id::new_id(),
            username: r.username.as_str(),
            email: r.email.as_str(),
            phone: r.phone.as_ref().map(Phone::as_str),
            password_hash: &hash,
            role: r.role.as_str(),
            email_verified,
        },
    )
    .await
    .map_err(map_unique)?;
    let mail = if email_verified {
        None
    } else {
        Some(issue_verification(state, &mut tx, &user, &user.email).await?)
    };
    tx.commit().await?;
    for id in expired {
        crate::auth::service::void_access_tokens(state, id, "account_expired").await;
        tracing::info!(user_id = %id, "unverified account expired; its email and username freed");
    }
    if let Some(mail) = mail {
        send(state, &mail).await;
    }
    Ok(user)
}

#[tracing::instrument(skip_all)]
pub async fn register(
    state: &AppState,
    req: RegisterRequest,
) -> Result<UserResponse, IdentityError> {
    let registration = Registration::parse(&req)?;
    let user = create_user(state, &registration, false).await?;
    metrics::counter!("identity_registrations_total", "role" => user.role.clone()).increment(1);
    tracing::info!(user_id = %user.id, role = %user.role, "user registered");
    user.try_into()
}

/// Make a verification token for `address` (the user's current or pending email) and the mail
/// that carries it there (sent by the caller after commit, so no mail goes out for a rolled-back
/// change).
pub async fn issue_verification(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    user: &UserRow,
    address: &str,
) -> Result<Mail, IdentityError> {
    auth_repo::expire_unused_user_tokens(&mut *tx, user.id, auth_repo::VERIFY_EMAIL).await?;
    let (token, hash) = new_opaque_token()?;
    auth_repo::insert_user_token(
        &mut *tx,
        user.id,
        auth_repo::VERIFY_EMAIL,
        address,
        &hash,
        state.config.verify_email_ttl_secs,
    )
    .await?;
    Ok(Mail {
        to: address.to_owned(),
        subject: "Verify your Koupang email address".into(),
        body: format!(
            "Hello {},\n\nconfirm your email address by opening\n{}/verify-email?token={token}\n\n\
             or by posting the token to POST /api/v1/users/verify-email.\n\ntoken: {token}\n\n\
             The link expires in {} hours.",
            user.username,
            state.config.storefront_url,
            state.config.verify_email_ttl_secs / 3600
        ),
    })
}

/// Mail failures never undo the change that caused the mail; they are logged for the operator.
pub async fn send(state: &AppState, mail: &Mail) {
    if let Err(e) = state.mailer.send(mail).await {
        tracing::error!(error = ?e, to = %mail.to, "sending mail failed");
    }
}

/// The caller's own account, which must still be usable.
pub async fn active_user(state: &AppState, id: Uuid) -> Result<UserRow, IdentityError> {
    let user = repo::find_by_id(&state.db, id)
        .await?
        .ok_or(IdentityError::UserNotFound)?;
    match UserStatus::parse(&user.status) {
        Some(UserStatus::Active) => Ok(user),
        Some(UserStatus::Deactivated) => Err(IdentityError::AccountDisabled),
        _ => Err(IdentityError::UserNotFound),
    }
}

/// Proof that the caller is the account's owner, not just the holder of a (possibly stolen)
/// access token. Guesses are throttled like logins.
async fn confirm_password(
    state: &AppState,
    user: &UserRow,
    given: Option<&str>,
) -> Result<(), IdentityError> {
    let Some(given) = given.filter(|p| !p.is_empty()) else {
        return Err(IdentityError::CurrentPasswordRequired);
    };
    let account = user.id.to_string();
    state
        .limiter
        .acquire(&account, None)
        .await
        .map_err(|retry_after_secs| IdentityError::TooManyAttempts { retry_after_secs })?;
    if !state
        .hasher
        .verify_or_dummy(given, Some(&user.password_hash))
        .await?
    {
        return Err(IdentityError::CurrentPasswordIncorrect);
    }
    state.limiter.reset_account(&account).await;
    Ok(())
}

pub async fn me(state: &AppState, caller: AuthUser) -> Result<UserResponse, IdentityError> {
    active_user(state, caller.id).await?.try_into()
}

#[tracing::instrument(skip_all, fields(user_id = %caller.id))]
pub async fn update_me(
    state: &AppState,
    caller: AuthUser,
    req: UpdateMeRequest,
) -> Result<UserResponse, IdentityError> {
    if req.role.is_some() {
        return Err(IdentityError::RoleChangeForbidden(
            "you cannot change your own role",
        ));
    }
    let mut errors = Vec::new();
    let username = req
        .username
        .as_deref()
        .and_then(|v| check(Username::parse(v), "username", &mut errors));
    let email = req
        .email
        .as_deref()
        .and_then(|v| check(Email::parse(v), "email", &mut errors));
    let phone = match &req.phone {
        None => None,
        Some(None) => Some(None),
        Some(Some(p)) if p.trim().is_empty() => Some(None),
        Some(Some(p)) => check(Phone::parse(p), "phone", &mut errors).map(Some),
    };
    if !errors.is_empty() {
        return Err(IdentityError::Validation(errors));
    }
    // An email change is the first step of an account takeover with a stolen token (new address,
    // then forgot-password): it needs the password, and the new address only becomes the login
    // and reset address once verified.
    let current = active_user(state, caller.id).await?;
    let new_email = email.filter(|e| e.as_str() != current.email);
    if new_email.is_some() {
        confirm_password(state, &current, req.current_password.as_deref()).await?;
    }
    let mut tx = state.db.begin().await?;
    let before = repo::find_by_id_for_update(&mut *tx, caller.id)
        .await?
        .ok_or(IdentityError::UserNotFound)?;
    if before.status != UserStatus::Active.as_str() {
        return Err(IdentityError::AccountDisabled);
    }
    if let Some(e) = &new_email {
        if repo::email_in_use(&mut *tx, e.as_str(), caller.id).await? {
            return Err(IdentityError::EmailTaken);
        }
    }
    let after = repo::update_profile(
        &mut *tx,
        caller.id,
        &ProfileChanges {
            username: username.as_ref().map(Username::as_str),
            pending_email: new_email.as_ref().map(Email::as_str),
            phone: phone.as_ref().map(|p| p.as_ref().map(Phone::as_str)),
        },
    )
    .await
    .map_err(map_unique)?;
    let mails = match &new_email {
        Some(new) => vec![
            issue_verification(state, &mut tx, &after, new.as_str()).await?,
            email_change_notice(&after, new.as_str()),
        ],
        None => vec![],
    };
    tx.commit().await?;
    for mail in &mails {
        send(state, mail).await;
    }
    after.try_into()
}

/// Tells the address in use that someone asked to replace it: the owner learns of a change made
/// with a stolen token while the old address still works.
fn email_change_notice(user: &UserRow, new: &str) -> Mail {
    Mail {
        to: user.email.clone(),
        subject: "Your Koupang email address is about to change".into(),
        body: format!(
            "Hello {},\n\na change of this account's email address to {new} was requested. It \
             takes effect only once that address is verified; until then this address stays the \
             one you log in and reset your password with.\n\nIf this was not you, change your \
             password now: that also ends every session.",
            user.username
        ),
    }
}

#[tracing::instrument(skip_all, fields(user_id = %caller.id))]
pub async fn delete_me(
    state: &AppState,
    caller: AuthUser,
    req: DeleteMeRequest,
) -> Result<(), IdentityError> {
    let current = active_user(state, caller.id).await?;
    confirm_password(state, &current, req.current_password.as_deref()).await?;
    let mut tx = state.db.begin().await?;
    if !repo::scrub_and_delete(&mut *tx, caller.id).await? {
        return Err(IdentityError::UserNotFound);
    }
    auth_repo::revoke_all_sessions(&mut *tx, caller.id, "account_deleted").await?;
    auth_repo::delete_user_tokens(&mut *tx, caller.id).await?;
    tx.commit().await?;
    crate::auth::service::void_access_tokens(state, caller.id, "account_deleted").await;
    tracing::info!("account closed");
    Ok(())
}

pub async fn list_users(
    state: &AppState,
    q: ListUsersQuery,
) -> Result<Page<UserResponse>, IdentityError> {
    let params = PageParams {
        limit: q.limit,
        cursor: q.cursor,
    };
    let limit = params.limit()?;
    let after: Option<Uuid> = params.cursor()?;
    let mut errors = Vec::new();
    if let Some(r) = &q.role {
        if Role::parse(r).is_none() {
            errors.push(FieldError::new("role", "must be BUYER, SELLER or ADMIN"));
        }
    }
    if let Some(s) = &q.status {
        if UserStatus::parse(s).is_none() {
            errors.push(FieldError::new(
                "status",
                "must be active, deactivated or deleted",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(IdentityError::Validation(errors));
    }
    let rows = repo::list(
        &state.db,
        &repo::ListFilter {
            role: q.role.as_deref(),
            status: q.status.as_deref(),
            after,
            limit: i64::from(limit) + 1,
        },
    )
    .await?;
    let page = Page::from_rows(rows, limit, |u| u.id);
    Ok(Page {
        items: page
            .items
            .into_iter()
            .map(UserResponse::try_from)
            .collect::<Result<_, _>>()?,
        next_cursor: page.next_cursor,
    })
}

pub async fn get_user(state: &AppState, id: Uuid) -> Result<UserResponse, IdentityError> {
    repo::find_by_id(&state.db, id)
        .await?
        .ok_or(IdentityError::UserNotFound)?
        .try_into()
}

#[tracing::instrument(skip_all, fields(admin_id = %admin.id, user_id = %id))]
pub async fn change_role(
    state: &AppState,
    admin: AuthUser,
    id: Uuid,
    role: &str,
) -> Result<UserResponse, IdentityError> {
    let role = Role::parse(role.trim())
        .ok_or_else(|| IdentityError::field("role", "must be BUYER or SELLER"))?;
    // Admins are made (and unmade) only by the operator command, never over HTTP: a stolen admin
    // token must not be able to mint more admins.
    if role == Role::Admin {
        return Err(IdentityError::AdminRoleOperatorOnly);
    }
    if id == admin.id {
        return Err(IdentityError::RoleChangeForbidden(
            "admins cannot change their own role; ask another admin",
        ));
    }
    let current = repo::find_by_id(&state.db, id)
        .await?
        .ok_or(IdentityError::UserNotFound)?;
    if current.role == Role::Admin.as_str() {
        return Err(IdentityError::AdminRoleOperatorOnly);
    }
    let user = repo::set_role(&state.db, id, role.as_str())
        .await?
        .ok_or(IdentityError::UserNotFound)?;
    // Tokens still carrying the old role stop working; the user's next refresh gets the new one.
    crate::auth::service::void_access_tokens(state, id, "role_changed").await;
    tracing::info!(role = role.as_str(), "role changed");
    user.try_into()
}

/// Admin deactivation or re-activation, through the status transition function.
#[tracing::instrument(skip_all, fields(admin_id = %admin.id, user_id = %id))]
pub async fn set_active(
    state: &AppState,
    admin: AuthUser,
    id: Uuid,
    active: bool,
) -> Result<UserResponse, IdentityError> {
    if id == admin.id {
        return Err(IdentityError::SelfAction(
            "admins cannot deactivate themselves",
        ));
    }
    let target = if active {
        UserStatus::Active
    } else {
        UserStatus::Deactivated
    };
    let from: Vec<&str> = [
        UserStatus::Active,
        UserStatus::Deactivated,
        UserStatus::Deleted,
    ]
    .into_iter()
    .filter(|s| s.can_become(target))
    .map(UserStatus::as_str)
    .collect();
    let mut tx = state.db.begin().await?;
    let user = match repo::set_status(&mut *tx, id, target.as_str(), &from).await? {
        Some(u) => u,
        None => {
            // Either unknown, deleted, or already in the target state (idempotent).
            let current = repo::find_by_id(&mut *tx, id)
                .await?
                .filter(|u| u.status != UserStatus::Deleted.as_str())
                .ok_or(IdentityError::UserNotFound)?;
            return current.try_into();
        }
    };
    if !active {
        auth_repo::revoke_all_sessions(&mut *tx, id, "deactivated").await?;
    }
    tx.commit().await?;
    if !active {
        crate::auth::service::void_access_tokens(state, id, "deactivated").await;
    }
    tracing::info!(status = target.as_str(), "user status changed");
    user.try_into()
}
