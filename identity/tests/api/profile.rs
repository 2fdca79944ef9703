use reqwest::StatusCode;
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
async fn changing_the_email_unverifies_it_and_mails_the_new_address() {
    let app = TestApp::spawn().await;
    let (_, s) = app.signed_in("dina", "BUYER").await;
    let old_token = app.token_from_latest_mail("dina@example.com");
    let me: Value = app
        .patch_auth(
            "/api/v1/users/me",
            &s.access,
            json!({"email": "Dina.New@Example.com"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "dina.new@example.com");
    assert_eq!(me["email_verified"], false);
    // The token mailed to the old address cannot verify the new one.
    let resp = app
        .post("/api/v1/users/verify-email", json!({"token": old_token}))
        .await;
    assert_error(resp, StatusCode::BAD_REQUEST, "INVALID_OR_EXPIRED_TOKEN").await;
    let token = app.token_from_latest_mail("dina.new@example.com");
    assert_eq!(
        app.post("/api/v1/users/verify-email", json!({"token": token}))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
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
            json!({"email": "fay@example.com"}),
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
        app.delete_auth("/api/v1/users/me", &s.access)
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
