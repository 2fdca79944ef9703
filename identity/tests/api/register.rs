use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, TestApp, PASSWORD};

#[tokio::test]
async fn registering_returns_201_with_the_user_and_never_the_password() {
    let app = TestApp::spawn().await;
    let resp = app
        .post(
            "/api/v1/users/register",
            json!({"username": "Alice_1", "email": "  Alice@Example.COM ", "password": PASSWORD,
                   "phone": "+1 555 010 9999", "role": "SELLER"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["username"], "Alice_1");
    assert_eq!(
        body["email"], "alice@example.com",
        "email normalised to lower case"
    );
    assert_eq!(body["phone"], "+15550109999");
    assert_eq!(body["role"], "SELLER");
    assert_eq!(body["email_verified"], false);
    assert_eq!(
        uuid::Uuid::parse_str(body["id"].as_str().unwrap())
            .unwrap()
            .get_version_num(),
        7
    );
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(!body.to_string().contains(PASSWORD));
    let stored: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'Alice_1'")
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert!(stored.starts_with("$argon2id$"), "stored hash: {stored}");
}

#[tokio::test]
async fn duplicate_username_in_any_case_or_duplicate_email_is_409() {
    let app = TestApp::spawn().await;
    app.user("bob", "BUYER").await;
    let resp = app
        .post(
            "/api/v1/users/register",
            json!({"username": "BOB", "email": "other@example.com", "password": PASSWORD, "role": "BUYER"}),
        )
        .await;
    assert_error(resp, StatusCode::CONFLICT, "USERNAME_TAKEN").await;
    let resp = app
        .post(
            "/api/v1/users/register",
            json!({"username": "bobby", "email": "BOB@example.com", "password": PASSWORD, "role": "BUYER"}),
        )
        .await;
    assert_error(resp, StatusCode::CONFLICT, "EMAIL_TAKEN").await;
}

#[tokio::test]
async fn racing_registrations_of_one_username_create_exactly_one_user() {
    let app = TestApp::spawn().await;
    let attempts = (0..12).map(|i| {
        app.post(
            "/api/v1/users/register",
            json!({"username": "racer", "email": format!("racer{i}@example.com"), "password": PASSWORD, "role": "BUYER"}),
        )
    });
    let statuses: Vec<StatusCode> = join_all(attempts)
        .await
        .iter()
        .map(|r| r.status())
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        11,
        "{statuses:?}"
    );
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE lower(username) = 'racer'")
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn racing_registrations_of_one_email_create_exactly_one_user() {
    let app = TestApp::spawn().await;
    let attempts = (0..8).map(|i| {
        app.post(
            "/api/v1/users/register",
            json!({"username": format!("mail{i}"), "email": "same@example.com", "password": PASSWORD, "role": "SELLER"}),
        )
    });
    let statuses: Vec<StatusCode> = join_all(attempts)
        .await
        .iter()
        .map(|r| r.status())
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(statuses
        .iter()
        .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT));
}

#[tokio::test]
async fn invalid_fields_are_all_reported_at_once_with_422() {
    let app = TestApp::spawn().await;
    let resp = app
        .post(
            "/api/v1/users/register",
            json!({"username": "a b", "email": "not-an-email", "password": "short", "phone": "call me", "role": "BUYER"}),
        )
        .await;
    let body = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let fields: Vec<&str> = body["error"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["username", "email", "password", "phone"]);
}

#[tokio::test]
async fn missing_fields_are_named() {
    let app = TestApp::spawn().await;
    let resp = app
        .post("/api/v1/users/register", json!({"username": "carol"}))
        .await;
    let body = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let text = body["error"]["details"].to_string();
    for f in ["email", "password", "role"] {
        assert!(text.contains(f), "{f} missing from {text}");
    }
}

#[tokio::test]
async fn weak_passwords_are_refused() {
    let app = TestApp::spawn().await;
    for weak in [
        "alllowercase1!",
        "ALLUPPER1!",
        "NoDigits!!",
        "NoSymbol123",
        "Sh0rt!",
        &format!("Aa1!{}", "x".repeat(125)),
    ] {
        let resp = app
            .post(
                "/api/v1/users/register",
                json!({"username": "dave", "email": "dave@example.com", "password": weak, "role": "BUYER"}),
            )
            .await;
        let body = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        assert_eq!(
            body["error"]["details"]["fields"][0]["field"], "password",
            "{weak}"
        );
    }
}

#[tokio::test]
async fn nobody_can_register_as_admin_or_an_unknown_role() {
    let app = TestApp::spawn().await;
    for role in ["ADMIN", "admin", "ROOT", ""] {
        let resp = app
            .post(
                "/api/v1/users/register",
                json!({"username": "mallory", "email": "mallory@example.com", "password": PASSWORD, "role": role}),
            )
            .await;
        let body = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        assert_eq!(body["error"]["details"]["fields"][0]["field"], "role");
    }
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(count, 0, "no account was created");
}

#[tokio::test]
async fn registration_mails_a_verification_token_that_verifies_once() {
    let app = TestApp::spawn().await;
    let (_, session) = app.signed_in("erin", "BUYER").await;
    let token = app.token_from_latest_mail("erin@example.com");
    let resp = app
        .post("/api/v1/users/verify-email", json!({"token": token}))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let me: Value = app
        .get_auth("/api/v1/users/me", &session.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email_verified"], true);
    let again = app
        .post("/api/v1/users/verify-email", json!({"token": token}))
        .await;
    assert_error(again, StatusCode::BAD_REQUEST, "INVALID_OR_EXPIRED_TOKEN").await;
    let garbage = app
        .post("/api/v1/users/verify-email", json!({"token": "nope"}))
        .await;
    assert_error(garbage, StatusCode::BAD_REQUEST, "INVALID_OR_EXPIRED_TOKEN").await;
}

#[tokio::test]
async fn an_expired_verification_token_is_refused() {
    let app = TestApp::spawn().await;
    app.user("frank", "BUYER").await;
    let token = app.token_from_latest_mail("frank@example.com");
    sqlx::query("UPDATE user_tokens SET expires_at = now() - interval '1 second'")
        .execute(&app.state.db)
        .await
        .unwrap();
    let resp = app
        .post("/api/v1/users/verify-email", json!({"token": token}))
        .await;
    assert_error(resp, StatusCode::BAD_REQUEST, "INVALID_OR_EXPIRED_TOKEN").await;
}

#[tokio::test]
async fn verification_tokens_are_stored_only_as_hashes() {
    let app = TestApp::spawn().await;
    app.user("grace", "BUYER").await;
    let token = app.token_from_latest_mail("grace@example.com");
    let stored: Vec<u8> = sqlx::query_scalar("SELECT token_hash FROM user_tokens")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(stored.len(), 32);
    assert_ne!(stored, token.as_bytes());
}
