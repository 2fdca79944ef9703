use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::StatusCode;
use serde_json::{json, Value};
use shared::auth::{Claims, Ed25519KeyPair, JwtVerifier, Role};

use crate::helpers::{assert_error, TestApp};

fn claims_for(user: &Value, exp_offset: i64) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        sub: uuid::Uuid::parse_str(user["id"].as_str().unwrap()).unwrap(),
        role: Role::Admin,
        iat: now - 10,
        exp: now + exp_offset,
        iss: "koupang-identity".into(),
        aud: "koupang".into(),
        jti: uuid::Uuid::now_v7(),
    }
}

#[tokio::test]
async fn requests_without_a_token_are_401() {
    let app = TestApp::spawn().await;
    let resp = app.get("/api/v1/users/me").await;
    assert_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    let resp = app
        .client
        .get(app.url("/api/v1/users/me"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_refused() {
    let app = TestApp::spawn().await;
    let user = app.user("victor", "BUYER").await;
    let forger = Ed25519KeyPair::generate().unwrap();
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        &claims_for(&user, 600),
        &jsonwebtoken::EncodingKey::from_ed_der(&forger.pkcs8_der),
    )
    .unwrap();
    assert_error(
        app.get_auth("/api/v1/users/me", &forged).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_TOKEN",
    )
    .await;
    assert_error(
        app.get_auth("/api/v1/users", &forged).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_TOKEN",
    )
    .await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let app = TestApp::spawn().await;
    let user = app.user("wendy", "BUYER").await;
    let expired = shared::test_utils::sign_claims(&claims_for(&user, -60));
    assert_error(
        app.get_auth("/api/v1/users/me", &expired).await,
        StatusCode::UNAUTHORIZED,
        "TOKEN_EXPIRED",
    )
    .await;
}

#[tokio::test]
async fn alg_none_and_tampered_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let (user, s) = app.signed_in("xena", "BUYER").await;
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims_for(&user, 600)).unwrap());
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        assert_error(
            app.get_auth("/api/v1/users", &token).await,
            StatusCode::UNAUTHORIZED,
            "INVALID_TOKEN",
        )
        .await;
    }
    // A real token whose payload is swapped for an admin one keeps the old signature: refused.
    let parts: Vec<&str> = s.access.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], payload, parts[2]);
    assert_error(
        app.get_auth("/api/v1/users", &tampered).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_TOKEN",
    )
    .await;
    // HS256 signed with the public key as the secret (the classic key-confusion attack).
    let public_pem = shared::test_utils::test_keys().public_pem();
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims_for(&user, 600),
        &jsonwebtoken::EncodingKey::from_secret(public_pem.as_bytes()),
    )
    .unwrap();
    assert_error(
        app.get_auth("/api/v1/users", &hs).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_TOKEN",
    )
    .await;
}

#[tokio::test]
async fn access_tokens_carry_the_spec_claims_and_verify_with_the_published_jwks() {
    let app = TestApp::spawn().await;
    let (user, s) = app.signed_in("yara", "SELLER").await;
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    let raw = URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap();
    let claims = JwtVerifier::from_raw_public_key(&raw, "koupang-identity", "koupang")
        .verify(&s.access)
        .expect("verifies with the JWKS key");
    assert_eq!(claims.sub.to_string(), user["id"].as_str().unwrap());
    assert_eq!(claims.role, Role::Seller);
    assert_eq!(claims.exp - claims.iat, 900);
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(s.access.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], key["kid"]);
}

#[tokio::test]
async fn the_role_in_a_refreshed_token_follows_an_admin_role_change() {
    let app = TestApp::spawn().await;
    let (_, admin) = app.admin("zed").await;
    let (user, s) = app.signed_in("amy", "BUYER").await;
    let resp = app
        .put_auth(
            &format!("/api/v1/users/{}/role", user["id"].as_str().unwrap()),
            &admin.access,
            json!({"role": "SELLER"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let refreshed: Value = app.refresh(&s.refresh).await.json().await.unwrap();
    let claims = shared::test_utils::test_verifier()
        .verify(refreshed["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims.role, Role::Seller);
}
