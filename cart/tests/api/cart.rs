//! The cart's endpoints: snapshots from the catalog, lines, quantities, isolation, TTL.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, buyer, TestApp};

#[tokio::test]
async fn adding_a_line_takes_price_and_name_from_the_catalog_not_the_client() {
    let app = TestApp::spawn().await;
    let sku = app.product("Teapot", &[("24.90", 10)]).await.remove(0);
    let b = buyer();
    let resp = app
        .send(
            Method::POST,
            "/api/v1/cart/items",
            &b.token,
            Some(
                json!({"sku_id": sku, "quantity": 2, "unit_price": "0.01", "product_name": "Free"}),
            ),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let cart: Value = resp.json().await.unwrap();
    let line = &cart["items"][0];
    assert_eq!(line["sku_id"], sku);
    assert_eq!(line["product_name"], "Teapot");
    assert_eq!(line["unit_price"], "24.90");
    assert_eq!(line["currency"], "USD");
    assert_eq!(line["quantity"], 2);
    assert_eq!(line["line_total"], "49.80");
    assert_eq!(line["image_url"], "https://img.example/p.png");
    assert_eq!(
        cart["totals"],
        json!([{"currency": "USD", "amount": "49.80"}])
    );
    assert_eq!(cart["item_count"], 2);
}

#[tokio::test]
async fn adding_again_adds_to_the_line_and_put_sets_it() {
    let app = TestApp::spawn().await;
    let skus = app.product("Cups", &[("3.50", 50), ("4.00", 50)]).await;
    let b = buyer();
    app.add_ok(&b, &skus[0], 2).await;
    app.add_ok(&b, &skus[1], 1).await;
    let cart = app.add_ok(&b, &skus[0], 3).await;
    assert_eq!(cart["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        cart["items"][0]["sku_id"], skus[0],
        "lines keep the order they were added in"
    );
    assert_eq!(cart["items"][0]["quantity"], 5);
    assert_eq!(cart["item_count"], 6);
    assert_eq!(cart["totals"][0]["amount"], "21.50");

    let resp = app
        .send(
            Method::PUT,
            &format!("/api/v1/cart/items/{}", skus[0]),
            &b.token,
            Some(json!({"quantity": 1})),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let cart: Value = resp.json().await.unwrap();
    assert_eq!(cart["items"][0]["quantity"], 1);

    let resp = app
        .send(
            Method::DELETE,
            &format!("/api/v1/cart/items/{}", skus[1]),
            &b.token,
            None,
        )
        .await;
    let cart: Value = resp.json().await.unwrap();
    assert_eq!(cart["items"].as_array().unwrap().len(), 1);
    assert_error(
        app.send(
            Method::DELETE,
            &format!("/api/v1/cart/items/{}", skus[1]),
            &b.token,
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "CART_LINE_NOT_FOUND",
    )
    .await;
    assert_error(
        app.send(
            Method::PUT,
            &format!("/api/v1/cart/items/{}", skus[1]),
            &b.token,
            Some(json!({"quantity": 2})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "CART_LINE_NOT_FOUND",
    )
    .await;

    let resp = app
        .send(Method::DELETE, "/api/v1/cart", &b.token, None)
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let cart = app.get_cart(&b).await;
    assert_eq!(cart, json!({"items": [], "totals": [], "item_count": 0}));
}

#[tokio::test]
async fn a_cart_belongs_to_its_buyer_only() {
    let app = TestApp::spawn().await;
    let sku = app.product("Pen", &[("1.00", 10)]).await.remove(0);
    let (alice, bob) = (buyer(), buyer());
    app.add_ok(&alice, &sku, 3).await;
    assert!(app.get_cart(&bob).await["items"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_error(
        app.send(
            Method::DELETE,
            &format!("/api/v1/cart/items/{sku}"),
            &bob.token,
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "CART_LINE_NOT_FOUND",
    )
    .await;
    app.send(Method::DELETE, "/api/v1/cart", &bob.token, None)
        .await;
    assert_eq!(app.get_cart(&alice).await["items"][0]["quantity"], 3);

    // Only buyers have carts; without a token there is no cart at all.
    assert_error(
        app.send(Method::GET, "/api/v1/cart", &app.seller, None)
            .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    let resp = app
        .client
        .get(format!("{}/api/v1/cart", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn what_the_catalog_does_not_sell_cannot_be_added() {
    let app = TestApp::spawn().await;
    let b = buyer();
    assert_error(
        app.add(&b, &uuid::Uuid::now_v7().to_string(), 1).await,
        StatusCode::NOT_FOUND,
        "SKU_NOT_FOUND",
    )
    .await;
    let skus = app.product("Mixed", &[("5.00", 3), ("6.00", 3)]).await;
    app.catalog_call(
        Method::PATCH,
        &format!("/api/v1/skus/{}", skus[1]),
        json!({"status": "inactive"}),
    )
    .await;
    assert_error(
        app.add(&b, &skus[1], 1).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "SKU_UNAVAILABLE",
    )
    .await;
    let err = assert_error(
        app.add(&b, &skus[0], 4).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INSUFFICIENT_STOCK",
    )
    .await;
    assert_eq!(err["error"]["details"]["available"], 3);
    app.add_ok(&b, &skus[0], 2).await;
    assert_error(
        app.add(&b, &skus[0], 2).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INSUFFICIENT_STOCK",
    )
    .await;
    assert_eq!(
        app.get_cart(&b).await["items"][0]["quantity"],
        2,
        "nothing half-written"
    );
    let resp = app
        .send(
            Method::POST,
            "/api/v1/cart/items",
            &b.token,
            Some(json!({"sku_id": "nope", "quantity": 1})),
        )
        .await;
    assert!(resp.status().is_client_error());
}

#[tokio::test]
async fn every_write_restarts_the_thirty_day_clock() {
    let app = TestApp::spawn().await;
    let sku = app.product("Clock", &[("9.00", 10)]).await.remove(0);
    let b = buyer();
    app.add_ok(&b, &sku, 1).await;
    let mut redis = app.redis();
    let keys = app.keys(&b);
    for key in &keys {
        let ttl: i64 = redis::cmd("TTL")
            .arg(key)
            .query_async(&mut redis)
            .await
            .unwrap();
        assert!(
            ttl > 30 * 24 * 3600 - 60 && ttl <= 30 * 24 * 3600,
            "{key}: {ttl}"
        );
    }
    for key in &keys {
        let _: () = redis::cmd("EXPIRE")
            .arg(key)
            .arg(100)
            .query_async(&mut redis)
            .await
            .unwrap();
    }
    app.send(
        Method::PUT,
        &format!("/api/v1/cart/items/{sku}"),
        &b.token,
        Some(json!({"quantity": 2})),
    )
    .await;
    for key in &keys {
        let ttl: i64 = redis::cmd("TTL")
            .arg(key)
            .query_async(&mut redis)
            .await
            .unwrap();
        assert!(ttl > 30 * 24 * 3600 - 60, "a write refreshed {key}: {ttl}");
    }
}

#[tokio::test]
async fn an_untouched_cart_expires() {
    let app = TestApp::spawn_with(|c| c.cart_ttl_secs = 1).await;
    let sku = app.product("Ice", &[("2.00", 10)]).await.remove(0);
    let b = buyer();
    app.add_ok(&b, &sku, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    assert!(app.get_cart(&b).await["items"]
        .as_array()
        .unwrap()
        .is_empty());
}
