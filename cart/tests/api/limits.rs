//! The limits: 1–99 units a line, 50 lines a cart, held under racing requests.

use std::sync::Arc;

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, buyer, TestApp};

#[tokio::test]
async fn quantities_outside_one_to_ninety_nine_are_refused() {
    let app = TestApp::spawn().await;
    let sku = app.product("Bolt", &[("0.10", 500)]).await.remove(0);
    let b = buyer();
    for q in [0, -1, 100] {
        assert_error(
            app.add(&b, &sku, q).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "CART_QUANTITY_LIMIT",
        )
        .await;
    }
    app.add_ok(&b, &sku, 90).await;
    let err = assert_error(
        app.add(&b, &sku, 10).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "CART_QUANTITY_LIMIT",
    )
    .await;
    assert_eq!(err["error"]["details"]["would_be"], 100);
    assert_error(
        app.send(
            Method::PUT,
            &format!("/api/v1/cart/items/{sku}"),
            &b.token,
            Some(json!({"quantity": 0})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "CART_QUANTITY_LIMIT",
    )
    .await;
    assert_eq!(app.add_ok(&b, &sku, 9).await["items"][0]["quantity"], 99);
}

#[tokio::test]
async fn racing_adds_of_52_skus_leave_exactly_50_lines() {
    let app = Arc::new(TestApp::spawn().await);
    let prices: Vec<(&str, i64)> = (0..52).map(|_| ("1.00", 5)).collect();
    let skus = app.product("Many", &prices).await;
    let b = Arc::new(buyer());
    let results = join_all(skus.iter().cloned().map(|sku| {
        let (app, b) = (app.clone(), b.clone());
        tokio::spawn(async move {
            let resp = app.add(&b, &sku, 1).await;
            let status = resp.status();
            let body: Value = resp.json().await.unwrap();
            (status, body["error"]["code"].as_str().map(str::to_owned))
        })
    }))
    .await;
    let ok = results
        .iter()
        .filter(|r| r.as_ref().unwrap().0 == StatusCode::OK)
        .count();
    let full: Vec<_> = results
        .iter()
        .map(|r| r.as_ref().unwrap())
        .filter(|r| r.0 != StatusCode::OK)
        .collect();
    assert_eq!(ok, 50);
    assert_eq!(full.len(), 2);
    for (status, code) in full {
        assert_eq!(*status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(code.as_deref(), Some("CART_LINE_LIMIT"));
    }
    assert_eq!(
        app.get_cart(&b).await["items"].as_array().unwrap().len(),
        50
    );
}

#[tokio::test]
async fn racing_adds_to_one_line_never_pass_ninety_nine() {
    let app = Arc::new(TestApp::spawn().await);
    let sku = app.product("Nails", &[("0.05", 10_000)]).await.remove(0);
    let b = Arc::new(buyer());
    let results = join_all((0..15).map(|_| {
        let (app, b, sku) = (app.clone(), b.clone(), sku.clone());
        tokio::spawn(async move { app.add(&b, &sku, 10).await.status() })
    }))
    .await;
    let ok = results
        .iter()
        .filter(|s| *s.as_ref().unwrap() == StatusCode::OK)
        .count();
    assert_eq!(ok, 9, "9 × 10 fit under 99, the tenth would make 100");
    assert_eq!(app.get_cart(&b).await["items"][0]["quantity"], 90);
}
