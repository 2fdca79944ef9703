//! Brands and their category links.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, Caller, TestApp};

async fn brand(app: &TestApp, name: &str) -> Value {
    let resp = app
        .post_auth(
            "/api/v1/brands",
            &app.admin,
            json!({"name": name, "logo_url": "https://img.example/logo.png"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn admins_manage_brands_with_unique_names() {
    let app = TestApp::spawn().await;
    let acme = brand(&app, "Acme").await;
    assert_eq!(acme["slug"], "acme");
    assert_error(
        app.post_auth("/api/v1/brands", &app.admin, json!({"name": "ACME"}))
            .await,
        StatusCode::CONFLICT,
        "BRAND_NAME_TAKEN",
    )
    .await;
    assert_error(
        app.post_auth(
            "/api/v1/brands",
            &Caller::seller().token,
            json!({"name": "Mine"}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    assert_error(
        app.post_auth(
            "/api/v1/brands",
            &app.admin,
            json!({"name": "Bad", "logo_url": "ftp://x"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
    )
    .await;
    let id = acme["id"].as_str().unwrap();
    let resp = app
        .patch_auth(
            &format!("/api/v1/brands/{id}"),
            &app.admin,
            json!({"description": "Everything", "logo_url": null}),
        )
        .await;
    let updated: Value = resp.json().await.unwrap();
    assert_eq!(updated["description"], "Everything");
    assert!(updated["logo_url"].is_null());
    assert_eq!(updated["name"], "Acme");
    let listed: Value = app.get("/api/v1/brands").await.json().await.unwrap();
    assert_eq!(listed["items"][0]["id"], id);
    let got: Value = app
        .get(&format!("/api/v1/brands/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["description"], "Everything");
}

#[tokio::test]
async fn brands_link_to_categories_both_ways() {
    let app = TestApp::spawn().await;
    let acme = brand(&app, "Acme").await;
    let id = acme["id"].as_str().unwrap();
    let tools = app.admin_category("Tools", None).await;
    let link = format!("/api/v1/brands/{id}/categories/{tools}");
    assert_eq!(
        app.put_auth(&link, &app.admin, Value::Null).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.put_auth(&link, &app.admin, Value::Null).await.status(),
        StatusCode::NO_CONTENT,
        "idempotent"
    );
    let cats: Value = app
        .get(&format!("/api/v1/brands/{id}/categories"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cats["items"][0]["id"], tools);
    let brands: Value = app
        .get(&format!("/api/v1/categories/{tools}/brands"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(brands["items"][0]["id"], id);
    assert_error(
        app.put_auth(
            &format!("/api/v1/brands/{id}/categories/{}", uuid::Uuid::now_v7()),
            &app.admin,
            Value::Null,
        )
        .await,
        StatusCode::NOT_FOUND,
        "CATEGORY_NOT_FOUND",
    )
    .await;
    assert_eq!(
        app.delete_auth(&link, &app.admin).await.status(),
        StatusCode::NO_CONTENT
    );
    let cats: Value = app
        .get(&format!("/api/v1/brands/{id}/categories"))
        .await
        .json()
        .await
        .unwrap();
    assert!(cats["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_brand_in_use_cannot_be_deleted() {
    let app = TestApp::spawn().await;
    let acme = brand(&app, "Acme").await;
    let id = acme["id"].as_str().unwrap();
    let seller = Caller::seller();
    let p = app
        .product(&seller, json!({"name": "Anvil", "brand_id": id}))
        .await;
    assert_error(
        app.delete_auth(&format!("/api/v1/brands/{id}"), &app.admin)
            .await,
        StatusCode::CONFLICT,
        "BRAND_IN_USE",
    )
    .await;
    app.patch_auth(
        &format!("/api/v1/products/{}", p["id"].as_str().unwrap()),
        &seller.token,
        json!({"brand_id": null}),
    )
    .await;
    assert_eq!(
        app.delete_auth(&format!("/api/v1/brands/{id}"), &app.admin)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_error(
        app.get(&format!("/api/v1/brands/{id}")).await,
        StatusCode::NOT_FOUND,
        "BRAND_NOT_FOUND",
    )
    .await;
}
