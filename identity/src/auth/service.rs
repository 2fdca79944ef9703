//! Session and credential rules.
//!
//! - Login answers the same `401` in the same work for an unknown user and a wrong password, and
//!   throttles failures per account and per client address.
//! - Refresh tokens rotate on every use; presenting a used one revokes its whole session (family).
//! - Changing or resetting a password revokes every session of the user.

use std::net::IpAddr;

use shared::auth::{AuthUser, Role};
use uuid::Uuid;

use super::dto::{
    ChangePasswordRequest, ForgotPasswordRequest, LoginRequest, ResendVerificationRequest,
    ResetPasswordRequest, TokenResponse, VerifyEmailRequest,
};
use super::repository as repo;
use crate::error::IdentityError;
use crate::mail::Mail;
use crate::startup::AppState;
use crate::tokens::{hash_token, new_opaque_token};
use crate::users::domain::{Email, Password, UserStatus};
use crate::users::repository as users;
use crate::users::service::{active_user, issue_verification, send};

async fn issue_tokens(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    session: Uuid,
    user: Uuid,
    role: Role,
) -> Result<TokenResponse, IdentityError> {
    let (refresh, hash) = new_opaque_token()?;
    repo::insert_refresh_token(
        &mut *tx,
        session,
        &hash,
        state.config.refresh_token_ttl_secs,
    )
    .await?;
    Ok(TokenResponse {
        access_token: state.signer.sign(user, role)?,
        refresh_token: refresh,
        token_type: "Bearer".into(),
        expires_in: state.signer.ttl_secs(),
    })
}

/// The login throttle's key for a typed name; a namespace of its own, apart from the per-user
/// counters of password confirmations (keyed by user id).
fn login_name_key(typed: &str) -> String {
    format!("name:{}", typed.to_lowercase())
}

/// The owner proved who they are by resetting the password through the mailed link: clear the
/// failures counted under either of the account's names.
async fn forget_login_failures(state: &AppState, user: &users::UserRow) {
    for name in [&user.username, &user.email] {
        state.limiter.reset_account(&login_name_key(name)).await;
    }
}

fn role_of(s: &str) -> Result<Role, IdentityError> {
    Role::parse(s)
        .ok_or_else(|| IdentityError::Unexpected(anyhow::anyhow!("stored role '{s}' is unknown")))
}

#[tracing::instrument(skip_all)]
pub async fn login(
    state: &AppState,
    req: LoginRequest,
    ip: Option<IpAddr>,
) -> Result<TokenResponse, IdentityError> {
    let identifier = req.username.trim();
    // No account has a name with control characters (and Postgres cannot compare a NUL), so
    // such a name is simply wrong, like any unknown one.
    if identifier.is_empty()
        || identifier.len() > 254
        || identifier.chars().any(char::is_control)
        || req.password.is_empty()
        || req.password.len() > 1024
    {
        return Err(IdentityError::InvalidCredentials);
    }
    let user =
        users::find_by_login(&state.db, identifier, state.config.unverified_ttl_secs()).await?;
    // Throttle per name as typed (lower-cased), known or not, never per resolved account: a
    // counter shared by an account's username and email would tell whoever locks one that the
    // other is the same account. The price: an account takes the per-account limit of guesses
    // under its username and again under its email (the per-client limit still holds).
    let account = login_name_key(identifier);
    state
        .limiter
        .acquire(&account, ip)
        .await
        .map_err(|retry_after_secs| {
            metrics::counter!("identity_logins_total", "outcome" => "throttled").increment(1);
            IdentityError::TooManyAttempts { retry_after_secs }
        })?;
    let ok = state
        .hasher
        .verify_or_dummy(
            &req.password,
            user.as_ref().map(|u| u.password_hash.as_str()),
        )
        .await?;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        _ => {
            metrics::counter!("identity_logins_total", "outcome" => "failed").increment(1);
            return Err(IdentityError::InvalidCredentials);
        }
    };
    // Only the name typed: clearing the account's other name would show up in its counter.
    state.limiter.succeeded(&account, ip).await;
    if user.status != UserStatus::Active.as_str() {
        return Err(IdentityError::AccountDisabled);
    }
    if state.config.require_verified_email && user.email_verified_at.is_none() {
        return Err(IdentityError::EmailNotVerified);
    }
    let session = shared::id::new_id();
    let mut tx = state.db.begin().await?;
    repo::insert_session(&mut *tx, session, user.id).await?;
    let tokens = issue_tokens(state, &mut tx, session, user.id, role_of(&user.role)?).await?;
    tx.commit().await?;
    metrics::counter!("identity_logins_total", "outcome" => "succeeded").increment(1);
    tracing::info!(user_id = %user.id, session_id = %session, "logged in");
    Ok(tokens)
}

#[tracing::instrument(skip_all)]
pub async fn refresh(state: &AppState, token: &str) -> Result<TokenResponse, IdentityError> {
    let hash = hash_token(token.trim());
    let mut tx = state.db.begin().await?;
    let row = repo::find_refresh_token_for_update(&mut *tx, &hash)
        .await?
        .ok_or(IdentityError::InvalidRefreshToken)?;
    if row.session_revoked {
        return Err(IdentityError::InvalidRefreshToken);
    }
    if row.used {
        // A rotated token came back: whoever holds the family is not to be trusted any more.
        repo::revoke_session(&mut *tx, row.session_id, "refresh_token_reuse").await?;
        tx.commit().await?;
        metrics::counter!("identity_refresh_reuse_total").increment(1);
        tracing::warn!(session_id = %row.session_id, user_id = %row.user_id, "refresh token reuse: session revoked");
        return Err(IdentityError::RefreshTokenReused);
    }
    if row.expired {
        return Err(IdentityError::RefreshTokenExpired);
    }
    if row.status != UserStatus::Active.as_str() {
        repo::revoke_session(&mut *tx, row.session_id, "account_inactive").await?;
        tx.commit().await?;
        return Err(IdentityError::AccountDisabled);
    }
    repo::mark_refresh_token_used(&mut *tx, row.id).await?;
    // The role is read afresh, so a role change by an admin reaches the next access token.
    let tokens = issue_tokens(
        state,
        &mut tx,
        row.session_id,
        row.user_id,
        role_of(&row.role)?,
    )
    .await?;
    tx.commit().await?;
    Ok(tokens)
}

/// Void every access token `user` holds now (ADR 010): called after a change that ends sessions or
/// changes what a token grants (deactivation, role, password, account deletion) has committed, so
/// a token issued after the mark carries the new state. Best effort: when Redis cannot take the
/// mark the change stands, is logged, and the old tokens live out their (short) lifetime, just as
/// the services accept tokens when they cannot read marks.
pub async fn void_access_tokens(state: &AppState, user: Uuid, why: &'static str) {
    // The tokens' lifetime plus the verifiers' leeway and some clock skew.
    let lifetime = std::time::Duration::from_secs(state.signer.ttl_secs() + 60);
    match shared::auth::revoke_access_tokens(&state.redis, user, lifetime).await {
        Ok(mark) => tracing::info!(user_id = %user, why, mark, "access tokens voided"),
        Err(e) => tracing::error!(
            user_id = %user, why, error = %e,
            "could not void access tokens; they stay valid until they expire"
        ),
    }
}

/// Revoke the session the refresh token belongs to. Unknown tokens are accepted silently: logging
/// out twice is not an error.
pub async fn logout(state: &AppState, token: &str) -> Result<(), IdentityError> {
    let hash = hash_token(token.trim());
    if let Some(session) = repo::session_of_refresh_token(&state.db, &hash).await? {
        repo::revoke_session(&state.db, session, "logout").await?;
        tracing::info!(session_id = %session, "logged out");
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(user_id = %caller.id))]
pub async fn change_password(
    state: &AppState,
    caller: AuthUser,
    req: ChangePasswordRequest,
) -> Result<(), IdentityError> {
    let new =
        Password::parse(&req.new_password).map_err(|m| IdentityError::field("new_password", m))?;
    if req.new_password == req.current_password {
        return Err(IdentityError::field(
            "new_password",
            "must differ from the current password",
        ));
    }
    let user = active_user(state, caller.id).await?;
    // Guessing the current password through this endpoint is throttled like logins.
    state
        .limiter
        .acquire(&user.id.to_string(), None)
        .await
        .map_err(|retry_after_secs| IdentityError::TooManyAttempts { retry_after_secs })?;
    if !state
        .hasher
        .verify_or_dummy(&req.current_password, Some(&user.password_hash))
        .await?
    {
        return Err(IdentityError::CurrentPasswordIncorrect);
    }
    state.limiter.reset_account(&user.id.to_string()).await;
    let hash = state.hasher.hash(new.expose()).await?;
    let mut tx = state.db.begin().await?;
    users::set_password_hash(&mut *tx, user.id, &hash).await?;
    let revoked = repo::revoke_all_sessions(&mut *tx, user.id, "password_changed").await?;
    tx.commit().await?;
    void_access_tokens(state, user.id, "password_changed").await;
    tracing::info!(revoked_sessions = revoked, "password changed");
    Ok(())
}

pub async fn verify_email(state: &AppState, req: VerifyEmailRequest) -> Result<(), IdentityError> {
    let hash = hash_token(req.token.trim());
    let mut tx = state.db.begin().await?;
    let consumed = repo::consume_user_token(&mut *tx, repo::VERIFY_EMAIL, &hash)
        .await?
        .ok_or(IdentityError::InvalidOneTimeToken)?;
    let verified = users::mark_email_verified(&mut *tx, consumed.user_id, &consumed.email)
        .await
        .map_err(|e| {
            if shared::db::is_unique_violation(&e, "users_email_key") {
                IdentityError::EmailTaken
            } else {
                e.into()
            }
        })?;
    if !verified {
        // The address changed since the mail was sent: the token proves nothing about the new one.
        return Err(IdentityError::InvalidOneTimeToken);
    }
    tx.commit().await?;
    tracing::info!(user_id = %consumed.user_id, "email verified");
    Ok(())
}

/// A valid address for a mail-sending request, counted against the throttle before anything is
/// looked up, so known and unknown addresses meet the same limit and the same answers.
async fn mail_request(
    state: &AppState,
    purpose: &str,
    email: &str,
    ip: Option<IpAddr>,
) -> Result<Email, IdentityError> {
    let Ok(email) = Email::parse(email) else {
        return Err(IdentityError::field(
            "email",
            "is not a valid email address",
        ));
    };
    state
        .mail_limiter
        .acquire(purpose, email.as_str(), ip)
        .await
        .map_err(|retry_after_secs| IdentityError::TooManyAttempts { retry_after_secs })?;
    Ok(email)
}

/// Always accepted, whether or not the address has an account, so the answer reveals nothing —
/// neither in its body nor in its time: everything that depends on the account (the lookup, the
/// token, the mail) happens after the answer (`Background`), so a known address answers as fast as
/// an unknown one. An earlier unexpired link stays valid when a new one is sent (until one of them
/// is used), so someone requesting links for a victim's address cannot void the one the victim is
/// opening.
#[tracing::instrument(skip_all)]
pub async fn forgot_password(
    state: &AppState,
    req: ForgotPasswordRequest,
    ip: Option<IpAddr>,
) -> Result<(), IdentityError> {
    let email = mail_request(state, "forgot-password", &req.email, ip).await?;
    let job = state.clone();
    state.background.spawn("forgot-password", async move {
        send_reset_link(&job, email).await
    });
    Ok(())
}

async fn send_reset_link(state: &AppState, email: Email) -> Result<(), IdentityError> {
    let Some(user) = users::find_active_verified_by_email(&state.db, email.as_str()).await? else {
        return Ok(());
    };
    let (token, hash) = new_opaque_token()?;
    repo::insert_user_token(
        &state.db,
        user.id,
        repo::RESET_PASSWORD,
        &user.email,
        &hash,
        state.config.reset_password_ttl_secs,
    )
    .await?;
    let mail = Mail {
        to: user.email.clone(),
        subject: "Reset your Koupang password".into(),
        body: format!(
            "Hello {},\n\nsomeone asked to reset the password of this account. If it was you, open\n\
             {}/reset-password?token={token}\n\nor post the token with a new password to \
             POST /api/v1/users/reset-password.\n\ntoken: {token}\n\nThe link expires in {} minutes. \
             If it was not you, ignore this mail.",
            user.username,
            state.config.storefront_url,
            state.config.reset_password_ttl_secs / 60
        ),
    };
    send(state, &mail).await;
    Ok(())
}

/// Always accepted, whether or not an unverified account uses the address; mails a fresh link to
/// such an account only, after the answer (like forgot-password), so the time reveals nothing.
#[tracing::instrument(skip_all)]
pub async fn resend_verification(
    state: &AppState,
    req: ResendVerificationRequest,
    ip: Option<IpAddr>,
) -> Result<(), IdentityError> {
    let email = mail_request(state, "resend-verification", &req.email, ip).await?;
    let job = state.clone();
    state.background.spawn("resend-verification", async move {
        send_verification_link(&job, email).await
    });
    Ok(())
}

async fn send_verification_link(state: &AppState, email: Email) -> Result<(), IdentityError> {
    let Some(user) = users::find_active_unverified_by_email(
        &state.db,
        email.as_str(),
        state.config.unverified_ttl_secs(),
    )
    .await?
    else {
        return Ok(());
    };
    let mut tx = state.db.begin().await?;
    let mail = issue_verification(state, &mut tx, &user, &user.email).await?;
    tx.commit().await?;
    send(state, &mail).await;
    Ok(())
}

#[tracing::instrument(skip_all)]
pub async fn reset_password(
    state: &AppState,
    req: ResetPasswordRequest,
) -> Result<(), IdentityError> {
    let new =
        Password::parse(&req.new_password).map_err(|m| IdentityError::field("new_password", m))?;
    let token = hash_token(req.token.trim());
    // An unauthenticated caller must not get an argon2 hash out of us for a made-up token.
    if !repo::user_token_is_live(&state.db, repo::RESET_PASSWORD, &token).await? {
        return Err(IdentityError::InvalidOneTimeToken);
    }
    let hash = state.hasher.hash(new.expose()).await?;
    let mut tx = state.db.begin().await?;
    let consumed = repo::consume_user_token(&mut *tx, repo::RESET_PASSWORD, &token)
        .await?
        .ok_or(IdentityError::InvalidOneTimeToken)?;
    let user = users::find_by_id_for_update(&mut *tx, consumed.user_id)
        .await?
        .filter(|u| u.status == UserStatus::Active.as_str() && u.email == consumed.email)
        .ok_or(IdentityError::InvalidOneTimeToken)?;
    users::set_password_hash(&mut *tx, user.id, &hash).await?;
    // The other links sent for this account have done their job.
    repo::expire_unused_user_tokens(&mut *tx, user.id, repo::RESET_PASSWORD).await?;
    repo::revoke_all_sessions(&mut *tx, user.id, "password_reset").await?;
    tx.commit().await?;
    void_access_tokens(state, user.id, "password_reset").await;
    forget_login_failures(state, &user).await;
    tracing::info!(user_id = %user.id, "password reset");
    Ok(())
}
