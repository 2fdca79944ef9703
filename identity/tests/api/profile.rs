use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, TestApp, PASSWORD};

#[tokio::test]
async fn a_user_reads_their_own_profile() {
    let app = TestApp::spawn().await;
    let (user, s) = app.signed_in("bella", "SELLER").await;
    let resp = app.get_auth("/api/v1/users/me", &s.access).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let me: Value = resp.json().await.unwrap();
    assert_eq!(me["id"], user["id"]);
    assert_eq!(me["role"], "SELLER");
}

#[tokio::test]
async fn patching_the_profile_changes_only_the_given_fields() {
    let app = TestApp::spawn().await;
    let (_, s) = app.signed_in("cara", "BUYER").await;
    let me: Value = app
        .patch_auth(
            "/api/v1/users/me",
            &s.access,
            json!({"phone": "+44 20 7946 0000"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["phone"], "+442079460000");
    assert_eq!(me["username"], "cara");
    let me: Value = app
        .patch_auth("/api/v1/users/me", &s.access, json!({"username": "cara_2"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "cara_2");
    assert_eq!(me["phone"], "+442079460000", "absent field untouched");
    let me: Value = app
        .patch_auth("/api/v1/users/me", &s.access, json!({"phone": null}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["phone"], Value::Null, "null clears");
    app.login_ok("cara_2", PASSWORD).await;
}

#[tokio::test]
async fn a_new_email_takes_effect_only_once_verified_and_the_old_address_is_told() {
    let app = TestApp::spawn().await;
    let (_, s) = app.signed_in("dina", "BUYER").await;
    app.verify_email("dina@example.com").await;
    let mails_to_old = app.mails_to("dina@example.com").len();
    let me: Value = app
        .patch_auth(
            "/api/v1/users/me",
            &s.access,
            json!({"email": "Dina.New@Example.com", "current_password": PASSWORD}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "dina@example.com", "the old address stays");
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["pending_email"], "dina.new@example.com");
    let to_old = app.mails_to("dina@example.com");
    assert_eq!(to_old.len(), mails_to_old + 1, "the old address is told");
    assert!(
        to_old.last().unwrap().contains("dina.new@example.com"),
        "{to_old:?}"
    );
    assert!(!to_old.last().unwrap().contains("token: "));
    // Until verified, the old address is the login and the reset address; the new one is neither.
    app.login_ok("dina@example.com", PASSWORD).await;
    assert_error(
        app.login("dina.new@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_CREDENTIALS",
    )
    .await;
    let new_mails = app.mails_to("dina.new@example.com").len();
    app.post(
        "/api/v1/users/forgot-password",
        json!({"email": "dina.new@example.com"}),
    )
    .await;
    app.settled().await;
    assert_eq!(app.mails_to("dina.new@example.com").len(), new_mails);
    app.verify_email("dina.new@example.com").await;
    let me: Value = app
        .get_auth("/api/v1/users/me", &s.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "dina.new@example.com");
    assert_eq!(me["email_verified"], true);
    assert_eq!(me["pending_email"], Value::Null);
    app.login_ok("dina.new@example.com", PASSWORD).await;
}

#[tokio::test]
async fn an_email_change_without_the_right_current_password_changes_nothing() {
    let app = TestApp::spawn().await;
    let (_, stolen) = app.signed_in("ivy", "BUYER").await;
    for (body, code) in [
        (
            json!({"email": "thief@example.com", "phone": "5550100"}),
            "CURRENT_PASSWORD_REQUIRED",
        ),
        (
            json!({"email": "thief@example.com", "phone": "5550100", "current_password": "Wr0ng-password!"}),
            "CURRENT_PASSWORD_INCORRECT",
        ),
    ] {
        let resp = app
            .patch_auth("/api/v1/users/me", &stolen.access, body)
            .await;
        assert_error(resp, StatusCode::FORBIDDEN, code).await;
    }
    let me: Value = app
        .get_auth("/api/v1/users/me", &stolen.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "ivy@example.com");
    assert_eq!(me["pending_email"], Value::Null);
    assert_eq!(
        me["phone"],
        Value::Null,
        "nothing of the request was applied"
    );
    assert!(app.mails_to("thief@example.com").is_empty());
}

#[tokio::test]
async fn a_user_can_never_change_their_own_role() {
    let app = TestApp::spawn().await;
    let (_, s) = app.signed_in("eve", "BUYER").await;
    for role in [json!("ADMIN"), json!("SELLER"), json!(null)] {
        let resp = app
            .patch_auth(
                "/api/v1/users/me",
                &s.access,
                json!({"role": role, "phone": "5550100"}),
            )
            .await;
        assert_error(resp, StatusCode::FORBIDDEN, "ROLE_CHANGE_FORBIDDEN").await;
    }
    let me: Value = app
        .get_auth("/api/v1/users/me", &s.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "BUYER");
    assert_eq!(
        me["phone"],
        Value::Null,
        "nothing of the refused request was applied"
    );
    // And a BUYER cannot use the admin role endpoint on themselves either.
    let resp = app
        .put_auth(
            &format!("/api/v1/users/{}/role", me["id"].as_str().unwrap()),
            &s.access,
            json!({"role": "ADMIN"}),
        )
        .await;
    assert_error(resp, StatusCode::FORBIDDEN, "FORBIDDEN").await;
}

#[tokio::test]
async fn profile_changes_are_validated_and_conflicts_are_409() {
    let app = TestApp::spawn().await;
    app.user("fay", "BUYER").await;
    let (_, s) = app.signed_in("gus", "BUYER").await;
    let resp = app
        .patch_auth("/api/v1/users/me", &s.access, json!({"username": "x"}))
        .await;
    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let resp = app
        .patch_auth("/api/v1/users/me", &s.access, json!({"username": "FAY"}))
        .await;
    assert_error(resp, StatusCode::CONFLICT, "USERNAME_TAKEN").await;
    let resp = app
        .patch_auth(
            "/api/v1/users/me",
            &s.access,
            json!({"email": "fay@example.com", "current_password": PASSWORD}),
        )
        .await;
    assert_error(resp, StatusCode::CONFLICT, "EMAIL_TAKEN").await;
    let me: Value = app
        .get_auth("/api/v1/users/me", &s.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "gus");
    assert_eq!(me["email"], "gus@example.com");
}

#[tokio::test]
async fn deleting_the_account_ends_its_sessions_and_frees_its_names() {
    let app = TestApp::spawn().await;
    let (user, s) = app.signed_in("hal", "BUYER").await;
    assert_eq!(
        delete_me(&app, &s.access, json!({"current_password": PASSWORD}))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_error(
        app.login("hal", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_CREDENTIALS",
    )
    .await;
    assert_error(
        app.refresh(&s.refresh).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_REFRESH_TOKEN",
    )
    .await;
    assert_error(
        app.get_auth("/api/v1/users/me", &s.access).await,
        StatusCode::NOT_FOUND,
        "USER_NOT_FOUND",
    )
    .await;
    let (email, phone): (String, Option<String>) =
        sqlx::query_as("SELECT email, phone FROM users WHERE id = $1")
            .bind(uuid::Uuid::parse_str(user["id"].as_str().unwrap()).unwrap())
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert!(!email.contains("hal@"), "personal data scrubbed: {email}");
    assert!(phone.is_none());
    app.user("hal", "BUYER").await;
}

async fn delete_me(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.send(Method::DELETE, "/api/v1/users/me", Some(token), Some(&body))
        .await
}

#[tokio::test]
async fn closing_the_account_needs_the_current_password() {
    let app = TestApp::spawn().await;
    let (_, stolen) = app.signed_in("jon", "BUYER").await;
    // No body at all: the JSON with the password is missing.
    assert_error(
        app.delete_auth("/api/v1/users/me", &stolen.access).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;
    assert_error(
        delete_me(&app, &stolen.access, json!({})).await,
        StatusCode::FORBIDDEN,
        "CURRENT_PASSWORD_REQUIRED",
    )
    .await;
    assert_error(
        delete_me(
            &app,
            &stolen.access,
            json!({"current_password": "Wr0ng-password!"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "CURRENT_PASSWORD_INCORRECT",
    )
    .await;
    let me: Value = app
        .get_auth("/api/v1/users/me", &stolen.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["status"], "active");
    app.login_ok("jon", PASSWORD).await;
}

#[tokio::test]
async fn closing_the_account_scrubs_its_addresses_from_mail_tokens_and_the_pending_email() {
    let app = TestApp::spawn().await;
    let (user, s) = app.signed_in("kim", "BUYER").await;
    let id = uuid::Uuid::parse_str(user["id"].as_str().unwrap()).unwrap();
    app.verify_email("kim@example.com").await;
    app.post(
        "/api/v1/users/forgot-password",
        json!({"email": "kim@example.com"}),
    )
    .await;
    app.settled().await;
    let me: Value = app
        .patch_auth(
            "/api/v1/users/me",
            &s.access,
            json!({"email": "kim.new@example.com", "current_password": PASSWORD}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["pending_email"], "kim.new@example.com");
    let tokens_with = |email: &'static str| {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM user_tokens WHERE email = $1")
            .bind(email)
            .fetch_one(&app.state.db)
    };
    assert!(tokens_with("kim@example.com").await.unwrap() >= 2);
    assert_eq!(tokens_with("kim.new@example.com").await.unwrap(), 1);
    assert_eq!(
        delete_me(&app, &s.access, json!({"current_password": PASSWORD}))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(tokens_with("kim@example.com").await.unwrap(), 0);
    assert_eq!(tokens_with("kim.new@example.com").await.unwrap(), 0);
    let pending: Option<String> =
        sqlx::query_scalar("SELECT pending_email FROM users WHERE id = $1")
            .bind(id)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(pending, None);
}
