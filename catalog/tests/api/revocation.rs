//! Access-token revocation (contract §3, docs/adr/010): identity marks "this user's tokens issued
//! up to T are void" in Redis; the catalog refuses such tokens within a second (its cache of the
//! mark lives at most one second). The mark is written here exactly as identity writes it, with
//! `shared::auth::revoke_access_tokens`, under the stack's Redis prefix.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use shared::auth::Role;
use shared::config::Secret;
use shared::redis::RedisPool;
use shared::test_utils;

use crate::helpers::{Caller, TestApp};

const SELLER_ME: &str = "/api/v1/products/seller/me";

/// Poll `SELLER_ME` with `token` until it is refused; panics after `deadline`. Returns the body of
/// the refusal.
async fn until_refused(app: &TestApp, token: &str, deadline: Duration) -> Value {
    let start = Instant::now();
    loop {
        let resp = app.get_auth(SELLER_ME, token).await;
        if resp.status() != StatusCode::OK {
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
            return resp.json().await.unwrap();
        }
        assert!(
            start.elapsed() < deadline,
            "the revoked token was still accepted after {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn stack_redis(app: &TestApp) -> RedisPool {
    RedisPool::connect(&app.state.config.common).await.unwrap()
}

#[tokio::test]
async fn a_deactivated_sellers_token_is_refused_by_the_catalog_with_token_revoked() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let bystander = Caller::seller();
    app.product(&seller, json!({"name": "Lamp"})).await;
    assert_eq!(
        app.get_auth(SELLER_ME, &seller.token).await.status(),
        StatusCode::OK
    );

    // What identity does when an admin deactivates the seller.
    shared::auth::revoke_access_tokens(
        &stack_redis(&app).await,
        seller.id,
        Duration::from_secs(960),
    )
    .await
    .unwrap();

    // The mark reaches the catalog within its one-second cache; the deadline only bounds the wait.
    let body = until_refused(&app, &seller.token, Duration::from_secs(5)).await;
    assert_eq!(body["error"]["code"], "TOKEN_REVOKED");
    // Writes are refused too, and nobody else's token is affected.
    let resp = app
        .post_auth("/api/v1/products", &seller.token, json!({"name": "Chair"}))
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TOKEN_REVOKED");
    assert_eq!(
        app.get_auth(SELLER_ME, &bystander.token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_token_issued_after_the_revocation_mark_is_accepted() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    shared::auth::revoke_access_tokens(
        &stack_redis(&app).await,
        seller.id,
        Duration::from_secs(960),
    )
    .await
    .unwrap();
    let body = until_refused(&app, &seller.token, Duration::from_secs(5)).await;
    assert_eq!(body["error"]["code"], "TOKEN_REVOKED");

    // The user logs in again: a token minted after the mark.
    let fresh = test_utils::mint_token(seller.id, Role::Seller);
    let resp = app
        .post_auth("/api/v1/products", &fresh, json!({"name": "Chair"}))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        app.get_auth(SELLER_ME, &fresh).await.status(),
        StatusCode::OK
    );
}

/// `auth_revocation_checks_total{result="error"}` from the process-wide recorder.
fn revocation_check_errors() -> u64 {
    let text = shared::metrics::handle().expect("recorder").render();
    text.lines()
        .filter(|l| {
            l.starts_with("auth_revocation_checks_total{") && l.contains("result=\"error\"")
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

#[tokio::test]
async fn with_redis_unreachable_a_valid_token_is_accepted_and_the_failed_check_counted() {
    // Fail-open (docs/adr/010): nothing listens on port 1.
    let app = TestApp::spawn_with(|c| {
        c.common.redis_url = Secret::new("redis://127.0.0.1:1".to_owned());
        c.cache_enabled = false;
    })
    .await;
    let seller = Caller::seller();
    let before = revocation_check_errors();
    let resp = app
        .post_auth("/api/v1/products", &seller.token, json!({"name": "Lamp"}))
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(revocation_check_errors() - before, 1);
}
