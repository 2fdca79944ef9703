//! Access-token revocation (contract §3, docs/adr/010): deactivation, a role change and a password
//! change write the user's mark "tokens issued up to T are void" to Redis, after which the old
//! access token is refused with `TOKEN_REVOKED` (identity consults the mark like every service),
//! while a token issued after the mark works.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use shared::auth::{issued_at_millis, revocation_key, Claims, Role};
use uuid::Uuid;

use crate::helpers::{TestApp, PASSWORD};

/// The user's revocation mark as identity wrote it, with its remaining lifetime in ms.
async fn mark(app: &TestApp, user: Uuid) -> Option<(i64, i64)> {
    let key = revocation_key(&app.state.redis.key(&[]), user);
    let mut conn = app.state.redis.conn();
    let value: Option<i64> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    value.map(|v| (v, ttl))
}

fn claims(app: &TestApp, token: &str) -> Claims {
    app.state.signer.verifier().verify(token).unwrap()
}

/// Asserts the mark voids `token` and lives about as long as an access token can.
async fn assert_marked_void(app: &TestApp, user: Uuid, token: &str) {
    let (mark, ttl) = mark(app, user).await.expect("a revocation mark");
    assert!(
        mark >= issued_at_millis(&claims(app, token)),
        "the mark {mark} does not cover the token"
    );
    let lifetime_ms = (app.state.signer.ttl_secs() as i64 + 60) * 1000;
    assert!(ttl > 0 && ttl <= lifetime_ms, "ttl {ttl} ms");
}

/// Poll `GET /users/me` with `token` until it is refused as revoked; panics after 5 s (the mark is
/// cached for at most a second; the deadline only bounds the wait).
async fn until_revoked(app: &TestApp, token: &str) {
    let start = Instant::now();
    loop {
        let resp = app.get_auth("/api/v1/users/me", token).await;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap();
        if status == StatusCode::UNAUTHORIZED && body["error"]["code"] == "TOKEN_REVOKED" {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still {status} {body} with a revoked token"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn id_of(user: &Value) -> Uuid {
    Uuid::parse_str(user["id"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn deactivation_writes_the_mark_and_the_users_token_is_refused_as_revoked() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ada").await;
    let (seller, session) = app.signed_in("sam", "SELLER").await;
    assert!(mark(&app, id_of(&seller)).await.is_none());
    let resp = app
        .post_auth(
            &format!("/api/v1/users/{}/deactivate", id_of(&seller)),
            &admin.access,
            json!({}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_marked_void(&app, id_of(&seller), &session.access).await;
    until_revoked(&app, &session.access).await;
    // The admin's own token is untouched.
    assert_eq!(
        app.get_auth("/api/v1/users/me", &admin.access)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_role_change_writes_the_mark_and_the_refreshed_token_carries_the_new_role() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("ada").await;
    let (user, session) = app.signed_in("bob", "BUYER").await;
    let resp = app
        .put_auth(
            &format!("/api/v1/users/{}/role", id_of(&user)),
            &admin.access,
            json!({"role": "SELLER"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_marked_void(&app, id_of(&user), &session.access).await;
    until_revoked(&app, &session.access).await;

    // The session survives a role change: refreshing gives a token issued after the mark.
    let resp = app.refresh(&session.refresh).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let fresh = body["access_token"].as_str().unwrap();
    assert_eq!(claims(&app, fresh).role, Role::Seller);
    let resp = app.get_auth("/api/v1/users/me", fresh).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_password_change_writes_the_mark_and_a_new_login_works() {
    let app = TestApp::spawn().await;
    let (user, session) = app.signed_in("cyd", "BUYER").await;
    let new_password = "N3w-battery-staple!";
    let resp = app
        .post_auth(
            "/api/v1/users/me/password",
            &session.access,
            json!({"current_password": PASSWORD, "new_password": new_password}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_marked_void(&app, id_of(&user), &session.access).await;
    until_revoked(&app, &session.access).await;

    let again = app.login_ok("cyd", new_password).await;
    assert!(
        issued_at_millis(&claims(&app, &again.access)) > mark(&app, id_of(&user)).await.unwrap().0
    );
    let resp = app.get_auth("/api/v1/users/me", &again.access).await;
    assert_eq!(resp.status(), StatusCode::OK);
}
