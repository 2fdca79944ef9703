use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, TestApp, PASSWORD};

#[tokio::test]
async fn only_admins_may_use_the_admin_endpoints() {
    let app = TestApp::spawn().await;
    let (user, buyer) = app.signed_in("ian", "BUYER").await;
    let (_, seller) = app.signed_in("jon", "SELLER").await;
    let id = user["id"].as_str().unwrap();
    for token in [&buyer.access, &seller.access] {
        assert_error(
            app.get_auth("/api/v1/users", token).await,
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
        )
        .await;
        assert_error(
            app.get_auth(&format!("/api/v1/users/{id}"), token).await,
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
        )
        .await;
        assert_error(
            app.post_auth(&format!("/api/v1/users/{id}/deactivate"), token, json!({}))
                .await,
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
        )
        .await;
    }
}

#[tokio::test]
async fn admins_page_through_users_with_filters() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("kim").await;
    for name in ["u1", "u2", "u3", "u4", "u5"] {
        app.user(&format!("{name}_buyer"), "BUYER").await;
    }
    app.user("s1_seller", "SELLER").await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/users?limit=2&role=BUYER&cursor={c}"),
            None => "/api/v1/users?limit=2&role=BUYER".to_owned(),
        };
        let page: Value = app
            .get_auth(&path, &admin.access)
            .await
            .json()
            .await
            .unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|u| u["username"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["u1_buyer", "u2_buyer", "u3_buyer", "u4_buyer", "u5_buyer"],
        "oldest first, no repeats"
    );
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 5);

    assert_error(
        app.get_auth("/api/v1/users?limit=101", &admin.access).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert_error(
        app.get_auth("/api/v1/users?cursor=garbage", &admin.access)
            .await,
        StatusCode::BAD_REQUEST,
        "INVALID_CURSOR",
    )
    .await;
    assert_error(
        app.get_auth("/api/v1/users?role=KING", &admin.access).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    assert_error(
        app.get_auth("/api/v1/users?limit=abc", &admin.access).await,
        StatusCode::BAD_REQUEST,
        "INVALID_QUERY",
    )
    .await;
}

#[tokio::test]
async fn admins_get_any_user_and_unknown_ids_are_404() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("lou").await;
    let user = app.user("max", "SELLER").await;
    let got: Value = app
        .get_auth(
            &format!("/api/v1/users/{}", user["id"].as_str().unwrap()),
            &admin.access,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["username"], "max");
    let missing = uuid::Uuid::now_v7();
    assert_error(
        app.get_auth(&format!("/api/v1/users/{missing}"), &admin.access)
            .await,
        StatusCode::NOT_FOUND,
        "USER_NOT_FOUND",
    )
    .await;
    assert_error(
        app.get_auth("/api/v1/users/not-a-uuid", &admin.access)
            .await,
        StatusCode::BAD_REQUEST,
        "INVALID_PATH",
    )
    .await;
}

#[tokio::test]
async fn admins_change_roles_between_buyer_and_seller_but_never_their_own() {
    let app = TestApp::spawn().await;
    let (me, admin) = app.admin("ned").await;
    let user = app.user("ola", "BUYER").await;
    let path = format!("/api/v1/users/{}/role", user["id"].as_str().unwrap());
    let changed: Value = app
        .put_auth(&path, &admin.access, json!({"role": "SELLER"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(changed["role"], "SELLER");
    assert_error(
        app.put_auth(&path, &admin.access, json!({"role": "KING"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    let own = format!("/api/v1/users/{}/role", me["id"].as_str().unwrap());
    assert_error(
        app.put_auth(&own, &admin.access, json!({"role": "BUYER"}))
            .await,
        StatusCode::FORBIDDEN,
        "ROLE_CHANGE_FORBIDDEN",
    )
    .await;
}

#[tokio::test]
async fn no_admin_is_made_or_unmade_over_http() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("nia").await;
    let (other_admin, _) = app.admin("noa").await;
    let user = app.user("oli", "BUYER").await;
    let user_id = user["id"].as_str().unwrap();
    assert_error(
        app.put_auth(
            &format!("/api/v1/users/{user_id}/role"),
            &admin.access,
            json!({"role": "ADMIN"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "ADMIN_ROLE_OPERATOR_ONLY",
    )
    .await;
    let after: Value = app
        .get_auth(&format!("/api/v1/users/{user_id}"), &admin.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        after["role"], "BUYER",
        "the refused promotion changed nothing"
    );
    let other_id = other_admin["id"].as_str().unwrap();
    assert_error(
        app.put_auth(
            &format!("/api/v1/users/{other_id}/role"),
            &admin.access,
            json!({"role": "BUYER"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "ADMIN_ROLE_OPERATOR_ONLY",
    )
    .await;
    let other: Value = app
        .get_auth(&format!("/api/v1/users/{other_id}"), &admin.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(other["role"], "ADMIN");
}

#[tokio::test]
async fn deactivation_ends_sessions_and_blocks_login_until_reactivated() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("pia").await;
    let (user, s) = app.signed_in("rex", "BUYER").await;
    let id = user["id"].as_str().unwrap();
    let resp: Value = app
        .post_auth(
            &format!("/api/v1/users/{id}/deactivate"),
            &admin.access,
            json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resp["status"], "deactivated");
    assert_error(
        app.login("rex", PASSWORD).await,
        StatusCode::FORBIDDEN,
        "ACCOUNT_DISABLED",
    )
    .await;
    assert_error(
        app.refresh(&s.refresh).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_REFRESH_TOKEN",
    )
    .await;
    // The live access token is revoked (ADR 010); the user never used it here, so no service has
    // a cached answer and the refusal is immediate.
    assert_error(
        app.get_auth("/api/v1/users/me", &s.access).await,
        StatusCode::UNAUTHORIZED,
        "TOKEN_REVOKED",
    )
    .await;
    let again: Value = app
        .post_auth(
            &format!("/api/v1/users/{id}/deactivate"),
            &admin.access,
            json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["status"], "deactivated", "idempotent");
    let back: Value = app
        .post_auth(
            &format!("/api/v1/users/{id}/activate"),
            &admin.access,
            json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(back["status"], "active");
    app.login_ok("rex", PASSWORD).await;
}

#[tokio::test]
async fn an_admin_cannot_deactivate_themselves() {
    let app = TestApp::spawn().await;
    let (me, admin) = app.admin("sid").await;
    let resp = app
        .post_auth(
            &format!("/api/v1/users/{}/deactivate", me["id"].as_str().unwrap()),
            &admin.access,
            json!({}),
        )
        .await;
    assert_error(resp, StatusCode::FORBIDDEN, "SELF_ACTION_FORBIDDEN").await;
}
