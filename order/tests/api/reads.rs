//! Who sees what: the buyer and admins the whole order, a seller only their lines, everyone else
//! a 404; the lists; and who may act on an order.

use reqwest::StatusCode;
use serde_json::{json, Value};
use shared::auth::Role;

use crate::helpers::*;

#[tokio::test]
async fn an_order_is_seen_whole_by_its_buyer_and_admins_and_in_part_by_its_sellers() {
    let app = TestApp::spawn().await;
    let other_seller = user(Role::Seller);
    let mine = app.product("Hat", &[("10.00", 9)]).await[0];
    let theirs = app
        .product_of(&other_seller, "Scarf", &[("25.00", 9, "USD")])
        .await[0];
    let b = buyer();
    let o = app.place(&b, &[(mine, 2), (theirs, 1)]).await;
    let id = o["id"].as_str().unwrap();
    let path = format!("/api/v1/orders/{id}");

    let admin = user(Role::Admin);
    let as_admin = app.order(&admin.token, id).await;
    assert_eq!(as_admin["total_amount"], "45.00");
    assert_eq!(as_admin["items"].as_array().unwrap().len(), 2);

    let seller_view = app.order(&app.seller.token, id).await;
    let items = seller_view["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "only the seller's own line: {seller_view}");
    assert_eq!(items[0]["sku_id"], mine.to_string());
    assert_eq!(seller_view["subtotal"], "20.00");
    for hidden in [
        "total_amount",
        "payment_method",
        "buyer_id",
        "status_history",
    ] {
        assert!(
            seller_view.get(hidden).is_none(),
            "{hidden} shown to a seller: {seller_view}"
        );
    }
    let other_view = app.order(&other_seller.token, id).await;
    assert_eq!(other_view["subtotal"], "25.00");

    // Everyone else: no such order (its existence is not told).
    for stranger in [buyer(), user(Role::Seller)] {
        let resp = app.get_auth(&path, &stranger.token).await;
        assert_error(resp, StatusCode::NOT_FOUND, "ORDER_NOT_FOUND").await;
        let resp = app
            .post_auth(&format!("{path}/cancel"), &stranger.token, json!({}))
            .await;
        assert_error(resp, StatusCode::NOT_FOUND, "ORDER_NOT_FOUND").await;
        let resp = app
            .post_auth(&format!("{path}/deliver"), &stranger.token, json!({}))
            .await;
        assert_error(resp, StatusCode::NOT_FOUND, "ORDER_NOT_FOUND").await;
    }
    let resp = app.get(&path).await;
    assert_error(resp, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    // A seller of a line cannot cancel the buyer's order either.
    let resp = app
        .post_auth(&format!("{path}/cancel"), &app.seller.token, json!({}))
        .await;
    assert_error(resp, StatusCode::NOT_FOUND, "ORDER_NOT_FOUND").await;
    // A buyer cannot ship.
    let resp = app
        .post_auth(&format!("{path}/ship"), &b.token, json!({}))
        .await;
    assert_error(resp, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let resp = app.get_auth("/api/v1/orders/not-a-uuid", &b.token).await;
    assert_error(resp, StatusCode::BAD_REQUEST, "INVALID_PATH").await;
}

#[tokio::test]
async fn lists_are_the_callers_own_newest_first_by_status_and_in_pages() {
    let app = TestApp::spawn().await;
    let sku = app.product("Clip", &[("1.00", 99)]).await[0];
    let (b, other) = (buyer(), buyer());
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(app.place(&b, &[(sku, 1)]).await["id"].clone());
    }
    app.place(&other, &[(sku, 1)]).await;
    let cancelled = ids[1].as_str().unwrap();
    let resp = app
        .post_auth(
            &format!("/api/v1/orders/{cancelled}/cancel"),
            &b.token,
            json!({}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/orders?limit=2&cursor={c}"),
            None => "/api/v1/orders?limit=2".into(),
        };
        let page: Value = app.get_auth(&path, &b.token).await.json().await.unwrap();
        for o in page["items"].as_array().unwrap() {
            assert_eq!(o["item_count"], 1);
            seen.push(o["id"].clone());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let newest_first: Vec<Value> = ids.iter().rev().cloned().collect();
    assert_eq!(
        seen, newest_first,
        "own orders only, newest first, across pages"
    );

    let page: Value = app
        .get_auth("/api/v1/orders?status=cancelled", &b.token)
        .await
        .json()
        .await
        .unwrap();
    let only: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["id"])
        .collect();
    assert_eq!(only, vec![&ids[1]]);
    let resp = app.get_auth("/api/v1/orders?status=paid", &b.token).await;
    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let resp = app.get_auth("/api/v1/orders?cursor=zzz", &b.token).await;
    assert_error(resp, StatusCode::BAD_REQUEST, "INVALID_CURSOR").await;

    // The seller's list: orders with their lines, only their lines.
    let page: Value = app
        .get_auth("/api/v1/orders/seller/me?limit=100", &app.seller.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 6);
    let page: Value = app
        .get_auth("/api/v1/orders/seller/me?status=pending", &app.seller.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    assert!(page["items"][0].get("total_amount").is_none());
    let resp = app.get_auth("/api/v1/orders/seller/me", &b.token).await;
    assert_error(resp, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let stranger = user(Role::Seller);
    let page: Value = app
        .get_auth("/api/v1/orders/seller/me", &stranger.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"], json!([]));
}

#[tokio::test]
async fn cancel_keeps_the_note_and_refuses_what_cannot_be_cancelled() {
    let app = TestApp::spawn().await;
    let sku = app.product("Bell", &[("5.00", 9)]).await[0];
    let b = buyer();
    let o = app.place(&b, &[(sku, 1)]).await;
    let id = o["id"].as_str().unwrap();
    let path = format!("/api/v1/orders/{id}/cancel");
    let resp = app
        .post_auth(&path, &b.token, json!({"reason": "x".repeat(501)}))
        .await;
    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let resp = app
        .post_auth(&path, &b.token, json!({"reason": "a\u{0}b"}))
        .await;
    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let resp = app
        .post_auth(&path, &b.token, json!({"reason": "found it cheaper"}))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let o: Value = resp.json().await.unwrap();
    assert_eq!(o["status"], "cancelled");
    assert_eq!(o["cancel_reason"], "buyer_requested");
    assert_eq!(o["cancel_note"], "found it cheaper");
    assert!(
        o["payment_deadline"].is_null(),
        "a cancelled order has no deadline"
    );
    let events = app.outbox(id).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].0, "OrderCancelled");
    assert_eq!(events[1].1["reason"], "buyer_requested");
    assert_eq!(events[1].1["previous_status"], "pending");
    assert_eq!(
        events[1].1["items"],
        json!([{"sku_id": sku, "quantity": 1}])
    );

    // Twice: 409, and no second event.
    let resp = app.post_auth(&path, &b.token, json!({})).await;
    let err = assert_error(resp, StatusCode::CONFLICT, "ORDER_NOT_CANCELLABLE").await;
    assert_eq!(err["error"]["details"]["status"], "cancelled");
    assert_eq!(app.outbox(id).await.len(), 2);

    // An admin's cancel is `admin_cancelled`; no body at all is fine.
    let o2 = app.place(&b, &[(sku, 1)]).await;
    let admin = user(Role::Admin);
    let resp = app
        .client
        .post(app.url(&format!(
            "/api/v1/orders/{}/cancel",
            o2["id"].as_str().unwrap()
        )))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let o2: Value = resp.json().await.unwrap();
    assert_eq!(o2["cancel_reason"], "admin_cancelled");

    // Shipped orders cannot be cancelled, and only shipped ones delivered.
    let o3 = app.place(&b, &[(sku, 1)]).await;
    let id3 = o3["id"].as_str().unwrap();
    let resp = app
        .post_auth(
            &format!("/api/v1/orders/{id3}/deliver"),
            &b.token,
            json!({}),
        )
        .await;
    assert_error(resp, StatusCode::CONFLICT, "ORDER_NOT_DELIVERABLE").await;
    let resp = app
        .post_auth(
            &format!("/api/v1/orders/{id3}/ship"),
            &app.seller.token,
            json!({}),
        )
        .await;
    assert_error(resp, StatusCode::CONFLICT, "ORDER_NOT_SHIPPABLE").await;
    sqlx::query("UPDATE orders SET status = 'shipped', deadline_at = NULL WHERE id = $1")
        .bind(uuid(&o3["id"]))
        .execute(app.db())
        .await
        .unwrap();
    let resp = app
        .post_auth(&format!("/api/v1/orders/{id3}/cancel"), &b.token, json!({}))
        .await;
    let err = assert_error(resp, StatusCode::CONFLICT, "ORDER_NOT_CANCELLABLE").await;
    assert_eq!(err["error"]["details"]["status"], "shipped");
}
