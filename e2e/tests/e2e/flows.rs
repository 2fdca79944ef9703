//! One order at a time through every path of the saga.

use std::time::Duration;

use e2e::stack::order_body;
use e2e::{Options, Stack};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::assert_audit_clean;

fn payable(balance: &Value) -> String {
    balance["accounts"][0]["balance"]
        .as_str()
        .unwrap_or("none")
        .to_owned()
}

#[tokio::test]
async fn a_cart_order_is_reserved_paid_captured_and_leaves_the_cart() {
    let s = Stack::spawn().await;
    let seller = s.user("SELLER").await;
    let buyer = s.user("BUYER").await;
    let sku = s.product(&seller, "Walnut Desk", &[("25.00", 10)]).await[0];
    // Browse: the product is listed and priced.
    let listing = s
        .get(&s.catalog, "/api/v1/products?q=walnut", &buyer.token)
        .await;
    assert_eq!(listing["items"][0]["name"], "Walnut Desk", "{listing}");
    s.add_to_cart(&buyer, sku, 2).await;
    let (status, placed) = s
        .place_raw(
            &buyer,
            "desk-1",
            &json!({"from_cart": true, "payment_method": "tok_visa",
                    "shipping_address": {"name": "B", "line1": "1 St", "city": "Seoul",
                                         "postal_code": "04524", "country": "KR"}}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{placed}");
    let id = placed["id"].as_str().unwrap().parse().unwrap();
    let o = s.settled(&buyer, id).await;
    assert_eq!(
        (o["status"].as_str(), o["payment_status"].as_str()),
        (Some("confirmed"), Some("captured"))
    );
    assert_eq!(o["total_amount"], "50.00");
    s.wait_stock(sku, (8, 0, 2)).await;
    shared::test_utils::eventually(
        "the bought lines to leave the cart",
        Duration::from_secs(20),
        || async {
            let cart = s.get(&s.cart, "/api/v1/cart", &buyer.token).await;
            cart["items"].as_array().unwrap().is_empty().then_some(())
        },
    )
    .await;
    let p = s.payment_of(&buyer.token, id).await;
    let kinds: Vec<&str> = p["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["authorization", "capture"]);
    // 10 % commission: the seller is owed 45.00, the platform 5.00.
    let balance = s
        .get(
            &s.payment,
            "/api/v1/payments/seller/me/balance",
            &seller.token,
        )
        .await;
    assert_eq!(payable(&balance), "45.00");
    let admin = s.admin().await;
    let accounts = s
        .get(&s.payment, "/api/v1/ledger/accounts", &admin.token)
        .await;
    let commission = accounts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["code"] == "commission_revenue:USD")
        .map(|a| a["balance"].clone());
    assert_eq!(commission, Some(json!("5.00")));
    assert_audit_clean(&s).await;
}

#[tokio::test]
async fn a_client_price_is_ignored_and_a_price_changed_before_reservation_cancels() {
    let s = Stack::spawn_with(Options {
        hold_reservations: true,
        ..Options::default()
    })
    .await;
    let seller = s.user("SELLER").await;
    let buyer = s.user("BUYER").await;
    let skus = s
        .product(&seller, "Lamp", &[("30.00", 5), ("12.00", 5)])
        .await;
    let mut body = order_body(&[(skus[0], 1)], "tok_visa");
    body["items"][0]["unit_price"] = json!("0.01");
    body["total_amount"] = json!("0.01");
    let (status, tampered) = s.place_raw(&buyer, "tamper", &body).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        tampered["total_amount"], "30.00",
        "the catalog's price, not the client's"
    );
    // The second order's price changes after placement, before catalog reserves it.
    let changed = s.place(&buyer, &[(skus[1], 1)], "tok_visa").await;
    s.set_price(&seller, skus[1], "13.00").await;
    s.start_reservations().await;

    let first = s
        .settled(&buyer, tampered["id"].as_str().unwrap().parse().unwrap())
        .await;
    assert_eq!(first["status"], "confirmed");
    let p = s
        .payment_of(&buyer.token, first["id"].as_str().unwrap().parse().unwrap())
        .await;
    assert_eq!(p["amount"], "30.00", "charged the catalog's price");
    let second = s.settled(&buyer, changed).await;
    assert_eq!(second["status"], "cancelled");
    assert_eq!(second["cancel_reason"], "inventory_unavailable");
    let reason: Value = sqlx::query_scalar(
        "SELECT details->'reason' FROM order_status_history WHERE order_id = $1 AND status = 'cancelled'",
    )
    .bind(changed)
    .fetch_one(&s.order_db)
    .await
    .unwrap();
    assert_eq!(reason, json!("price_changed"));
    s.wait_stock(skus[1], (5, 0, 0)).await;
    assert_audit_clean(&s).await;
}

#[tokio::test]
async fn out_of_stock_and_declined_cards_cancel_and_timeouts_recover() {
    let s = Stack::spawn_with(Options {
        hold_reservations: true,
        ..Options::default()
    })
    .await;
    let seller = s.user("SELLER").await;
    let buyer = s.user("BUYER").await;
    let skus = s
        .product(&seller, "Kettle", &[("20.00", 5), ("9.00", 10)])
        .await;
    // Obviously too many: refused at placement.
    let (status, body) = s
        .place_raw(&buyer, "too-many", &order_body(&[(skus[0], 6)], "tok_visa"))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["code"], "ORDER_LINES_UNAVAILABLE");
    // Enough at placement, gone by reservation: cancelled, stock untouched.
    let short = s.place(&buyer, &[(skus[0], 3)], "tok_visa").await;
    s.set_stock(&seller, skus[0], 1).await;
    let declined = s.place(&buyer, &[(skus[1], 2)], "tok_decline").await;
    let slow = s.place(&buyer, &[(skus[1], 1)], "tok_timeout").await;
    s.start_reservations().await;

    let o = s.settled(&buyer, short).await;
    assert_eq!(
        (o["status"].as_str(), o["cancel_reason"].as_str()),
        (Some("cancelled"), Some("inventory_unavailable"))
    );
    s.wait_stock(skus[0], (1, 0, 0)).await;
    let o = s.settled(&buyer, declined).await;
    assert_eq!(
        (o["status"].as_str(), o["cancel_reason"].as_str()),
        (Some("cancelled"), Some("payment_failed"))
    );
    assert_eq!(o["payment_status"], "failed");
    let o = s.settled(&buyer, slow).await;
    assert_eq!(
        o["status"], "confirmed",
        "retried until the gateway answered"
    );
    let p = s.payment_of(&buyer.token, slow).await;
    assert_eq!(
        p["attempts"].as_array().unwrap().len(),
        6,
        "2 timeouts then success, twice: {p}"
    );
    // The declined order's reservation was released: only the timeout order's unit is sold.
    s.wait_stock(skus[1], (9, 0, 1)).await;
    assert_audit_clean(&s).await;
}

#[tokio::test]
async fn an_order_can_be_cancelled_pending_awaiting_payment_or_after_capture() {
    // Pending: catalog has not reserved yet.
    let s = Stack::spawn_with(Options {
        hold_reservations: true,
        mock_latency_ms: 1500,
        ..Options::default()
    })
    .await;
    let seller = s.user("SELLER").await;
    let buyer = s.user("BUYER").await;
    let sku = s.product(&seller, "Chair", &[("40.00", 10)]).await[0];
    let pending = s.place(&buyer, &[(sku, 1)], "tok_visa").await;
    let cancel = |id: uuid::Uuid| {
        let (s, token) = (&s, buyer.token.clone());
        async move {
            s.post(
                &s.order,
                &format!("/api/v1/orders/{id}/cancel"),
                &token,
                json!({"reason": "changed my mind"}),
            )
            .await
        }
    };
    assert_eq!(cancel(pending).await["status"], "cancelled");
    s.start_reservations().await;
    // Awaiting payment: the gateway is slow (1.5 s), the cancel lands while it authorizes.
    let awaiting = s.place(&buyer, &[(sku, 2)], "tok_visa").await;
    s.wait_status(&buyer, awaiting, "awaiting_payment").await;
    assert_eq!(cancel(awaiting).await["status"], "cancelled");
    let o = s.settled(&buyer, awaiting).await;
    assert!(
        matches!(o["payment_status"].as_str(), Some("voided" | "failed")),
        "{o}"
    );
    // After capture: refunded in full, the units back on the shelf.
    let captured = s.place(&buyer, &[(sku, 3)], "tok_visa").await;
    let o = s.settled(&buyer, captured).await;
    assert_eq!(o["payment_status"], "captured");
    s.wait_stock(sku, (7, 0, 3)).await;
    assert_eq!(cancel(captured).await["status"], "cancelled");
    let o = s.settled(&buyer, captured).await;
    assert_eq!(o["payment_status"], "refunded");
    s.wait_stock(sku, (10, 0, 0)).await;
    let nets: Vec<(String, rust_decimal::Decimal)> = sqlx::query_as(
        "SELECT a.code, sum(CASE WHEN e.direction = 'debit' THEN e.amount ELSE -e.amount END)
         FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
         JOIN ledger_accounts a ON a.id = e.account_id WHERE t.order_id = $1 GROUP BY a.code",
    )
    .bind(captured)
    .fetch_all(&s.payment_db)
    .await
    .unwrap();
    assert!(
        !nets.is_empty() && nets.iter().all(|(_, n)| n.is_zero()),
        "{nets:?}"
    );
    assert_audit_clean(&s).await;
}

#[tokio::test]
async fn the_payment_deadline_cancels_while_the_gateway_is_slow_and_nothing_stays_held() {
    let s = Stack::spawn_with(Options {
        payment_timeout_secs: 2,
        mock_latency_ms: 5000,
        ..Options::default()
    })
    .await;
    let seller = s.user("SELLER").await;
    let buyer = s.user("BUYER").await;
    let sku = s.product(&seller, "Clock", &[("15.00", 4)]).await[0];
    let id = s.place(&buyer, &[(sku, 2)], "tok_visa").await;
    let o = s.settled(&buyer, id).await;
    assert_eq!(o["status"], "cancelled");
    assert_eq!(o["cancel_reason"], "payment_timeout");
    // The authorization that landed after the deadline (2 s, the gateway takes 5 s) was voided.
    assert_eq!(o["payment_status"], "voided", "{o}");
    let p = s.payment_of(&buyer.token, id).await;
    assert_eq!(p["status"], "voided");
    s.wait_stock(sku, (4, 0, 0)).await;
    assert_audit_clean(&s).await;
}

#[tokio::test]
async fn a_capture_failing_past_its_retries_cancels_voids_and_restocks() {
    let s = Stack::spawn_with(Options {
        mock_timeout_failures: 4,
        authorize_max_attempts: 6,
        capture_max_attempts: 3,
        ..Options::default()
    })
    .await;
    let seller = s.user("SELLER").await;
    let buyer = s.user("BUYER").await;
    let sku = s.product(&seller, "Rug", &[("60.00", 3)]).await[0];
    let id = s.place(&buyer, &[(sku, 1)], "tok_timeout").await;
    let o = s.settled(&buyer, id).await;
    assert_eq!(
        (o["status"].as_str(), o["cancel_reason"].as_str()),
        (Some("cancelled"), Some("capture_failed"))
    );
    assert_eq!(o["payment_status"], "voided");
    s.wait_stock(sku, (3, 0, 0)).await;
    assert_audit_clean(&s).await;
}

#[tokio::test]
async fn a_multi_seller_order_shows_each_seller_only_their_part() {
    let s = Stack::spawn().await;
    let (a, b) = (s.user("SELLER").await, s.user("SELLER").await);
    let buyer = s.user("BUYER").await;
    let sa = s.product(&a, "Pen", &[("3.00", 10)]).await[0];
    let sb = s.product(&b, "Ink", &[("7.00", 10)]).await[0];
    let id = s.place(&buyer, &[(sa, 2), (sb, 1)], "tok_visa").await;
    assert_eq!(s.settled(&buyer, id).await["status"], "confirmed");
    for (seller, sku, subtotal, payable) in [(&a, sa, "6.00", "5.40"), (&b, sb, "7.00", "6.30")] {
        let view = s.order_of(&seller.token, id).await;
        let items = view["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{view}");
        assert_eq!(items[0]["sku_id"], sku.to_string());
        assert_eq!(view["subtotal"], subtotal);
        assert!(view.get("total_amount").is_none());
        let balance = s
            .get(
                &s.payment,
                "/api/v1/payments/seller/me/balance",
                &seller.token,
            )
            .await;
        assert_eq!(payable_of(&balance), payable);
    }
    assert_audit_clean(&s).await;
}

fn payable_of(balance: &Value) -> String {
    payable(balance)
}
