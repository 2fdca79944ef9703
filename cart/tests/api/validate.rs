//! `/validate`: every line re-checked against the catalog now.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{buyer, TestApp};

async fn validate(app: &TestApp, b: &crate::helpers::Buyer) -> Value {
    let resp = app
        .send(Method::POST, "/api/v1/cart/validate", &b.token, None)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

fn status_of(v: &Value, sku: &str) -> String {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["sku_id"] == sku)
        .unwrap()["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_fresh_cart_is_valid_and_stale_lines_are_named() {
    let app = TestApp::spawn().await;
    let skus = app
        .product(
            "Set",
            &[("10.00", 5), ("20.00", 5), ("30.00", 5), ("40.00", 5)],
        )
        .await;
    let b = buyer();
    for s in &skus {
        app.add_ok(&b, s, 2).await;
    }
    let v = validate(&app, &b).await;
    assert_eq!(v["valid"], true, "{v}");

    // Price changed, stock ran out, SKU withdrawn; the fourth line is still fine.
    app.catalog_call(
        Method::PATCH,
        &format!("/api/v1/skus/{}", skus[0]),
        json!({"price": "12.00"}),
    )
    .await;
    app.catalog_call(
        Method::POST,
        &format!("/api/v1/skus/{}/stock", skus[1]),
        json!({"set": 1}),
    )
    .await;
    app.catalog_call(
        Method::PATCH,
        &format!("/api/v1/skus/{}", skus[2]),
        json!({"status": "inactive"}),
    )
    .await;
    let v = validate(&app, &b).await;
    assert_eq!(v["valid"], false);
    assert_eq!(status_of(&v, &skus[0]), "price_changed");
    assert_eq!(status_of(&v, &skus[1]), "insufficient_stock");
    assert_eq!(status_of(&v, &skus[2]), "unavailable");
    assert_eq!(status_of(&v, &skus[3]), "ok");
    let first = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["sku_id"] == skus[0])
        .unwrap()
        .clone();
    assert_eq!(first["snapshot_price"], "10.00");
    assert_eq!(first["current_price"], "12.00");
    let second = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["sku_id"] == skus[1])
        .unwrap()
        .clone();
    assert_eq!(second["available"], 1);
    // Validation reports; it does not rewrite the cart.
    assert_eq!(app.get_cart(&b).await["items"][0]["unit_price"], "10.00");
}

#[tokio::test]
async fn an_empty_cart_is_valid() {
    let app = TestApp::spawn().await;
    let v = validate(&app, &buyer()).await;
    assert_eq!(v, json!({"valid": true, "items": []}));
}
