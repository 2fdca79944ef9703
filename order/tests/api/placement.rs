//! `POST /orders`: server-side prices, every 4xx, idempotency, and the catalog and cart being down.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use shared::auth::Role;
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test]
async fn an_order_is_priced_by_the_catalog_and_a_client_price_is_ignored() {
    let app = TestApp::spawn().await;
    let other_seller = user(Role::Seller);
    let a = app.product("Mug", &[("12.50", 10)]).await;
    let b = app
        .product_of(&other_seller, "Tea", &[("7.25", 10, "USD")])
        .await;
    let b_ = buyer();
    let mut body = order_body(&[(a[0], 2), (b[0], 1), (a[0], 1)]);
    // What a tampering client might send: never read.
    body["items"][0]["unit_price"] = json!("0.01");
    body["total_amount"] = json!("0.03");
    body["status"] = json!("confirmed");
    let resp = app.place_raw(Some(&b_.token), Some("k-1"), &body).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let o: Value = resp.json().await.unwrap();
    assert_eq!(o["status"], "pending");
    assert_eq!(o["payment_status"], "none");
    assert_eq!(o["buyer_id"], b_.id.to_string());
    // 3 × 12.50 (the two lines of one SKU merged) + 7.25.
    assert_eq!(o["total_amount"], "44.75");
    assert_eq!(o["currency"], "USD");
    let items = o["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{o}");
    let mug = items
        .iter()
        .find(|i| i["sku_id"] == a[0].to_string())
        .unwrap();
    assert_eq!(mug["quantity"], 3);
    assert_eq!(mug["unit_price"], "12.50");
    assert_eq!(mug["line_total"], "37.50");
    assert_eq!(mug["product_name"], "Mug");
    assert_eq!(mug["seller_id"], app.seller.id.to_string());
    let tea = items
        .iter()
        .find(|i| i["sku_id"] == b[0].to_string())
        .unwrap();
    assert_eq!(tea["seller_id"], other_seller.id.to_string());
    assert_eq!(o["shipping_address"]["country"], "GB");
    assert_eq!(o["payment_method"], "tok_visa");
    assert!(o["cancel_reason"].is_null());
    assert!(
        o["payment_deadline"].is_string(),
        "an unpaid order has a deadline"
    );
    assert_eq!(o["status_history"][0]["status"], "pending");
    assert_eq!(o["status_history"][0]["trigger"], "placed");

    // The event that starts the saga carries the catalog's prices, written with the order.
    let events = app.outbox(o["id"].as_str().unwrap()).await;
    assert_eq!(events.len(), 1);
    let (ty, payload) = &events[0];
    assert_eq!(ty, "OrderCreated");
    assert_eq!(payload["total"], "44.75");
    let lines = payload["items"].as_array().unwrap();
    assert!(lines
        .iter()
        .any(|l| l["unit_price"] == "12.50" && l["quantity"] == 3));
    assert!(lines
        .iter()
        .any(|l| l["unit_price"] == "7.25" && l["quantity"] == 1));
}

async fn assert_nothing_written(app: &TestApp) {
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM outbox").await, 0);
}

#[tokio::test]
async fn bad_placements_are_clear_4xx_and_write_nothing() {
    let app = TestApp::spawn().await;
    let sku = app.product("Pen", &[("1.00", 5)]).await[0];
    let yen = app
        .product_of(&app.seller, "Fan", &[("500", 5, "JPY")])
        .await[0];
    let b = buyer();
    let good = order_body(&[(sku, 1)]);
    let key = Some("key");

    let resp = app.place_raw(None, key, &good).await;
    assert_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    let seller = user(Role::Seller);
    let resp = app.place_raw(Some(&seller.token), key, &good).await;
    assert_error(resp, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let resp = app.place_raw(Some(&b.token), None, &good).await;
    assert_error(resp, StatusCode::BAD_REQUEST, "IDEMPOTENCY_KEY_REQUIRED").await;
    let long = "k".repeat(256);
    let resp = app.place_raw(Some(&b.token), Some(&long), &good).await;
    assert_error(resp, StatusCode::BAD_REQUEST, "INVALID_IDEMPOTENCY_KEY").await;

    let invalid = |mutate: &dyn Fn(&mut Value)| {
        let mut body = good.clone();
        mutate(&mut body);
        body
    };
    let cases: Vec<(&str, Value)> = vec![
        ("items", invalid(&|b| b["items"] = json!([]))),
        (
            "items",
            invalid(&|b| {
                b.as_object_mut().unwrap().remove("items");
            }),
        ),
        ("items", invalid(&|b| b["from_cart"] = json!(true))),
        (
            "items[0].quantity",
            invalid(&|b| b["items"][0]["quantity"] = json!(0)),
        ),
        (
            "items[0].quantity",
            invalid(&|b| b["items"][0]["quantity"] = json!(100)),
        ),
        (
            "items",
            invalid(&|b| {
                b["items"] = json!((0..51)
                    .map(|_| json!({"sku_id": Uuid::now_v7(), "quantity": 1}))
                    .collect::<Vec<_>>())
            }),
        ),
        (
            "items",
            invalid(&|b| {
                b["items"] =
                    json!([{"sku_id": sku, "quantity": 60}, {"sku_id": sku, "quantity": 40}])
            }),
        ),
        (
            "shipping_address.country",
            invalid(&|b| b["shipping_address"]["country"] = json!("XX")),
        ),
        (
            "shipping_address.country",
            invalid(&|b| b["shipping_address"]["country"] = json!("USA")),
        ),
        (
            "shipping_address.city",
            invalid(&|b| b["shipping_address"]["city"] = json!("  ")),
        ),
        (
            "shipping_address.name",
            invalid(&|b| b["shipping_address"]["name"] = json!("x".repeat(201))),
        ),
        (
            "payment_method",
            invalid(&|b| b["payment_method"] = json!("4111111111111111")),
        ),
    ];
    for (i, (field, body)) in cases.iter().enumerate() {
        let resp = app
            .place_raw(Some(&b.token), Some(&format!("v{i}")), body)
            .await;
        let err = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        let fields: Vec<&str> = err["error"]["details"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert!(
            fields.contains(field),
            "case {i}: expected {field} in {err}"
        );
    }
    let resp = app
        .place_raw(Some(&b.token), Some("shape"), &json!({"items": "many"}))
        .await;
    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY").await;

    // Lines the catalog will not sell: every one is named.
    let unknown = Uuid::now_v7();
    let resp = app
        .place_raw(
            Some(&b.token),
            Some("u"),
            &order_body(&[(sku, 6), (unknown, 1)]),
        )
        .await;
    let err = assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "ORDER_LINES_UNAVAILABLE",
    )
    .await;
    let lines = err["error"]["details"]["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines
        .iter()
        .any(|l| l["sku_id"] == unknown.to_string() && l["reason"] == "unknown"));
    assert!(lines.iter().any(|l| l["sku_id"] == sku.to_string()
        && l["reason"] == "insufficient_stock"
        && l["available"] == 5));

    let resp = app
        .place_raw(
            Some(&b.token),
            Some("m"),
            &order_body(&[(sku, 1), (yen, 1)]),
        )
        .await;
    let err = assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "MIXED_CURRENCIES").await;
    assert_eq!(err["error"]["details"]["currencies"], json!(["JPY", "USD"]));

    assert_nothing_written(&app).await;
}

#[tokio::test]
async fn an_inactive_sku_is_named_and_nothing_is_ordered() {
    let app = TestApp::spawn().await;
    let skus = app.product("Lamp", &[("30.00", 5), ("31.00", 5)]).await;
    let resp = app
        .client
        .patch(format!("{}/api/v1/skus/{}", app.catalog.base, skus[1]))
        .bearer_auth(&app.seller.token)
        .json(&json!({"status": "inactive"}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let b = buyer();
    let resp = app
        .place_raw(
            Some(&b.token),
            Some("k"),
            &order_body(&[(skus[0], 1), (skus[1], 1)]),
        )
        .await;
    let err = assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "ORDER_LINES_UNAVAILABLE",
    )
    .await;
    assert_eq!(
        err["error"]["details"]["lines"],
        json!([{"sku_id": skus[1], "reason": "inactive", "requested": 1, "available": 5}])
    );
    assert_nothing_written(&app).await;
}

#[tokio::test]
async fn one_key_makes_one_order_per_buyer() {
    let app = TestApp::spawn().await;
    let skus = app.product("Cup", &[("3.00", 50), ("4.00", 50)]).await;
    let b = buyer();
    let body = order_body(&[(skus[0], 2)]);
    let first = app.place_raw(Some(&b.token), Some("same"), &body).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.unwrap();

    // A retry with the same key and body: the same order, in its current state.
    sqlx::query("UPDATE orders SET status = 'awaiting_payment' WHERE id = $1")
        .bind(uuid(&first["id"]))
        .execute(app.db())
        .await
        .unwrap();
    let again = app.place_raw(Some(&b.token), Some("same"), &body).await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    assert_eq!(
        again["status"], "awaiting_payment",
        "the replay shows the current state"
    );

    // The same key with another body is refused, naming the order the key made.
    let resp = app
        .place_raw(Some(&b.token), Some("same"), &order_body(&[(skus[1], 2)]))
        .await;
    let err = assert_error(
        resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;
    assert_eq!(err["error"]["details"]["order_id"], first["id"]);

    // Keys are per buyer: another buyer's "same" is another order.
    let other = buyer();
    let theirs = app.place_raw(Some(&other.token), Some("same"), &body).await;
    assert_eq!(theirs.status(), StatusCode::ACCEPTED);
    let theirs: Value = theirs.json().await.unwrap();
    assert_ne!(theirs["id"], first["id"]);

    // Eight truly concurrent requests with a fresh key: one order, eight identical answers.
    let racer = buyer();
    let body = order_body(&[(skus[1], 1)]);
    let answers = join_all((0..8).map(|_| {
        let (app, token, body) = (&app, racer.token.clone(), body.clone());
        async move {
            let resp = app.place_raw(Some(&token), Some("race"), &body).await;
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap())
        }
    }))
    .await;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["id"], answers[0].1["id"]);
    }
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE buyer_id = $1")
        .bind(racer.id)
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(orders, 1);
    let events = app.outbox(answers[0].1["id"].as_str().unwrap()).await;
    assert_eq!(events.len(), 1, "one OrderCreated for the one order");
}

#[tokio::test]
async fn with_the_catalog_down_placement_is_503_and_writes_nothing() {
    let app = TestApp::spawn_with(|c| c.catalog_url = closed_url()).await;
    let b = buyer();
    let resp = app
        .place_raw(
            Some(&b.token),
            Some("k"),
            &order_body(&[(Uuid::now_v7(), 1)]),
        )
        .await;
    let retry_after = resp.headers().get("retry-after").cloned();
    assert_error(resp, StatusCode::SERVICE_UNAVAILABLE, "CATALOG_UNAVAILABLE").await;
    assert!(retry_after.is_some(), "a 503 says when to retry");
    assert_nothing_written(&app).await;
}

#[tokio::test]
async fn an_order_from_the_cart_takes_the_cart_lines_at_catalog_prices() {
    let prefix = format!("x{}.", Uuid::now_v7().simple());
    let mut cart = None;
    let app = TestApp::spawn().await;
    let skus = app.product("Sock", &[("2.00", 20), ("2.50", 20)]).await;
    let cart_svc = spawn_cart(&app.catalog.base, &prefix).await;
    // A second order service wired to this cart, sharing the first one's database.
    let mut config = test_config(&app.db_url, &app.topic_prefix, &app.catalog.base);
    config.cart_url = cart_svc.base.clone();
    let (base, _state, shutdown) = start_order(config).await;
    let order_http = shared::test_utils::Http::new(base);
    cart.replace(cart_svc);
    let b = buyer();
    let body =
        json!({"from_cart": true, "shipping_address": address(), "payment_method": "tok_visa"});
    let place = |key: &'static str| {
        let (http, token, body) = (order_http.clone(), b.token.clone(), body.clone());
        async move {
            http.client
                .post(http.url("/api/v1/orders"))
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    // An empty cart is nothing to order.
    assert_error(
        place("empty").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "CART_EMPTY",
    )
    .await;

    let cart_http = shared::test_utils::Http::new(cart.as_ref().unwrap().base.clone());
    for (sku, q) in [(skus[0], 3), (skus[1], 1)] {
        let resp = cart_http
            .post_auth(
                "/api/v1/cart/items",
                &b.token,
                json!({"sku_id": sku, "quantity": q}),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let resp = place("cart").await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let o: Value = resp.json().await.unwrap();
    assert_eq!(o["total_amount"], "8.50");
    assert_eq!(o["items"].as_array().unwrap().len(), 2);

    // The cart down: 503, and no order is made.
    cart.take().unwrap().stop();
    shared::test_utils::eventually(
        "the cart to stop answering",
        std::time::Duration::from_secs(10),
        || {
            let http = cart_http.clone();
            async move {
                http.client
                    .get(http.url("/health/live"))
                    .send()
                    .await
                    .is_err()
                    .then_some(())
            }
        },
    )
    .await;
    assert_error(
        place("down").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "CART_UNAVAILABLE",
    )
    .await;
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 1);
    shutdown.shutdown();
}

#[tokio::test]
async fn past_the_limit_of_unpaid_orders_a_new_order_is_refused_busy_and_a_retry_still_answers() {
    let app = TestApp::spawn_with(|c| {
        c.max_orders_in_flight = 2;
        c.admission_refresh_ms = 0;
    })
    .await;
    let sku = app.product("Lamp", &[("20.00", 50)]).await[0];
    let b = buyer();
    let body = order_body(&[(sku, 1)]);
    let first = app.place_raw(Some(&b.token), Some("k-1"), &body).await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.unwrap();
    app.place(&b, &[(sku, 2)]).await;

    // Nobody reserves in these tests: both stay unpaid, so the third is refused at the door.
    let refused = app.place_raw(Some(&b.token), Some("k-3"), &body).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        refused.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"1"[..])
    );
    let e: Value = refused.json().await.unwrap();
    assert_eq!(e["error"]["code"], "ORDERS_BUSY", "{e}");
    assert_eq!(app.count("SELECT count(*) FROM orders").await, 2);
    assert_eq!(
        app.count("SELECT count(*) FROM outbox WHERE event_type = 'OrderCreated'")
            .await,
        2,
        "nothing written for the refused order"
    );

    // A retry of a placed order is answered as before, limit or not.
    let again = app.place_raw(Some(&b.token), Some("k-1"), &body).await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);

    // Once one of them is no longer unpaid, a new order gets in.
    let id = first["id"].as_str().unwrap();
    let cancelled = app
        .post_auth(&format!("/api/v1/orders/{id}/cancel"), &b.token, json!({}))
        .await;
    assert_eq!(cancelled.status(), StatusCode::ACCEPTED);
    let admitted = app.place_raw(Some(&b.token), Some("k-3"), &body).await;
    assert_eq!(admitted.status(), StatusCode::ACCEPTED);
}
