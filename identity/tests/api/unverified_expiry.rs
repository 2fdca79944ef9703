//! An account whose email is never verified expires after `unverified_account_ttl_secs`: its
//! email and username become free to register, and it can no longer log in. An account is made
//! old by moving its `created_at` back (the rule's input), never by waiting; the TTL is an hour
//! so an account just registered is certainly not expired, however slow the machine.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, TestApp, PASSWORD};

const TTL_SECS: u64 = 3600;
const OTHER_PASSWORD: &str = "An0ther-horse!";

async fn app() -> TestApp {
    TestApp::spawn_with(|c| c.unverified_account_ttl_secs = TTL_SECS).await
}

/// Move `username`'s registration back past (or within) the TTL.
async fn registered_secs_ago(app: &TestApp, username: &str, secs: i64) {
    let r = sqlx::query(
        "UPDATE users SET created_at = now() - $2::bigint * interval '1 second' WHERE username = $1",
    )
    .bind(username)
    .bind(secs)
    .execute(&app.state.db)
    .await
    .unwrap();
    assert_eq!(r.rows_affected(), 1, "{username} exists");
}

async fn register(app: &TestApp, username: &str, email: &str, password: &str) -> reqwest::Response {
    app.post(
        "/api/v1/users/register",
        json!({"username": username, "email": email, "password": password, "role": "BUYER"}),
    )
    .await
}

const EXPIRED: i64 = TTL_SECS as i64 + 1;

#[tokio::test]
async fn someone_else_registers_the_email_of_an_expired_unverified_account_and_the_old_account_cannot_log_in(
) {
    let app = app().await;
    app.user("squatter", "BUYER").await;
    registered_secs_ago(&app, "squatter", EXPIRED).await;

    let resp = register(&app, "owner", "squatter@example.com", OTHER_PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    let by_name = app.login("squatter", PASSWORD).await;
    assert_error(by_name, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS").await;
    let by_email = app.login("squatter@example.com", PASSWORD).await;
    assert_error(by_email, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS").await;
    app.login_ok("squatter@example.com", OTHER_PASSWORD).await;
}

#[tokio::test]
async fn the_username_of_an_expired_unverified_account_is_free_to_register() {
    let app = app().await;
    app.user("squatter", "BUYER").await;
    registered_secs_ago(&app, "squatter", EXPIRED).await;

    let resp = register(&app, "SQUATTER", "someone@example.com", OTHER_PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn an_expired_unverified_account_cannot_log_in_even_before_anyone_reuses_its_email() {
    let app = app().await;
    app.user("lapsed", "BUYER").await;
    // The test profile lets an unverified account log in while it is young.
    app.login_ok("lapsed", PASSWORD).await;
    registered_secs_ago(&app, "lapsed", EXPIRED).await;

    let resp = app.login("lapsed", PASSWORD).await;
    assert_error(resp, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS").await;
}

#[tokio::test]
async fn before_it_expires_an_unverified_account_still_holds_its_email_with_409() {
    let app = app().await;
    app.user("recent", "BUYER").await;
    registered_secs_ago(&app, "recent", TTL_SECS as i64 - 60).await;

    let resp = register(&app, "other", "recent@example.com", OTHER_PASSWORD).await;
    assert_error(resp, StatusCode::CONFLICT, "EMAIL_TAKEN").await;
    app.login_ok("recent", PASSWORD).await;
}

#[tokio::test]
async fn a_verified_account_never_expires() {
    let app = app().await;
    app.user("keeper", "BUYER").await;
    app.verify_email("keeper@example.com").await;
    registered_secs_ago(&app, "keeper", 10 * 365 * 24 * 3600).await;

    let resp = register(&app, "other", "keeper@example.com", OTHER_PASSWORD).await;
    assert_error(resp, StatusCode::CONFLICT, "EMAIL_TAKEN").await;
    let resp = register(&app, "keeper", "fresh@example.com", OTHER_PASSWORD).await;
    assert_error(resp, StatusCode::CONFLICT, "USERNAME_TAKEN").await;
    app.login_ok("keeper", PASSWORD).await;
}

#[tokio::test]
async fn racing_registrations_of_an_expired_accounts_email_create_exactly_one_user_and_the_rest_get_email_taken(
) {
    let app = app().await;
    app.user("squatter", "BUYER").await;
    registered_secs_ago(&app, "squatter", EXPIRED).await;

    let names: Vec<String> = (0..6).map(|i| format!("racer{i}")).collect();
    let attempts = names
        .iter()
        .map(|name| register(&app, name, "squatter@example.com", OTHER_PASSWORD));
    let responses = join_all(attempts).await;
    let statuses: Vec<StatusCode> = responses.iter().map(|r| r.status()).collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1, "{statuses:?}");
    for resp in responses
        .into_iter()
        .filter(|r| r.status() != StatusCode::CREATED)
    {
        assert_error(resp, StatusCode::CONFLICT, "EMAIL_TAKEN").await;
    }
}

#[tokio::test]
async fn an_expired_unverified_account_gets_no_new_verification_link() {
    let app = app().await;
    app.user("lapsed", "BUYER").await;
    assert_eq!(
        app.mails_to("lapsed@example.com").len(),
        1,
        "registration mail"
    );
    registered_secs_ago(&app, "lapsed", EXPIRED).await;

    let resp = app
        .post(
            "/api/v1/users/resend-verification",
            json!({"email": "lapsed@example.com"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    app.settled().await;
    assert_eq!(
        app.mails_to("lapsed@example.com").len(),
        1,
        "no link that could verify the expired account back to life"
    );
}
