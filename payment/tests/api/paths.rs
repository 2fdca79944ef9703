//! Each token's path through the running service: order events published on the broker, the
//! consumer and the worker doing the rest, and what payment publishes and books.

use payment::gateway::Operation;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test]
async fn a_visa_payment_is_authorized_then_captured_and_the_capture_splits_exactly() {
    let app = TestApp::spawn().await;
    let (order, buyer) = (Uuid::now_v7(), Uuid::now_v7());
    let (s1, s2) = (Uuid::now_v7(), Uuid::now_v7());
    // 10 % of 33.35 is 3.335 → 3.34 (half-even); of 0.15 is 0.015 → 0.02.
    app.publish(&request(
        order,
        buyer,
        "tok_visa",
        &[(s1, dec("33.35")), (s2, dec("0.15"))],
    ))
    .await;
    app.wait_status(order, "authorized").await;
    let events = app.outbox(order).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "PaymentAuthorized");
    assert_eq!(events[0].1["amount"], "33.50");
    assert!(events[0].1["gateway_reference"]
        .as_str()
        .unwrap()
        .starts_with("mock_"));
    assert_eq!(app.postings(order).await, ["authorization"]);

    app.publish(&confirmed(order, buyer)).await;
    app.wait_status(order, "captured").await;
    assert_eq!(
        app.outbox_types(order).await,
        ["PaymentAuthorized", "PaymentCaptured"]
    );
    let nets = app.nets(order).await;
    let net = |code: String| nets.iter().find(|(c, _)| *c == code).map(|(_, n)| *n);
    assert_eq!(
        net("gateway_holds:USD".into()),
        Some(dec("0")),
        "the hold is released"
    );
    assert_eq!(net("buyer_holds:USD".into()), Some(dec("0")));
    assert_eq!(net("gateway_clearing:USD".into()), Some(dec("33.50")));
    assert_eq!(net(format!("seller_payable:{s1}:USD")), Some(dec("-30.01")));
    assert_eq!(net(format!("seller_payable:{s2}:USD")), Some(dec("-0.13")));
    assert_eq!(net("commission_revenue:USD".into()), Some(dec("-3.36")));
    assert_eq!(app.charges(Operation::Authorize).await, 1);
    assert_eq!(app.charges(Operation::Capture).await, 1);
    app.assert_books_clean().await;

    // The seller sees what they are owed.
    let seller = shared::test_utils::mint_token(s1, shared::auth::Role::Seller);
    let b: serde_json::Value = app
        .get_auth("/api/v1/payments/seller/me/balance", &seller)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(b["accounts"][0]["balance"], json!("30.01"));
}

#[tokio::test]
async fn a_declined_card_and_an_unknown_token_fail_the_payment_and_book_nothing() {
    let app = TestApp::spawn().await;
    let (o1, o2, buyer, seller) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    app.publish(&request(o1, buyer, "tok_decline", &[(seller, dec("5.00"))]))
        .await;
    app.publish(&request(
        o2,
        buyer,
        "tok_mastercard",
        &[(seller, dec("5.00"))],
    ))
    .await;
    app.wait_status(o1, "failed").await;
    app.wait_status(o2, "failed").await;
    let e1 = app.outbox(o1).await;
    assert_eq!(e1.len(), 1);
    assert_eq!(e1[0].0, "PaymentFailed");
    assert_eq!(e1[0].1["reason"], "card_declined");
    assert_eq!(
        app.outbox(o2).await[0].1["reason"],
        "invalid_payment_method"
    );
    assert!(app.postings(o1).await.is_empty());
    assert_eq!(app.charges(Operation::Authorize).await, 0);
    app.assert_books_clean().await;
}

#[tokio::test]
async fn timeouts_are_retried_with_the_same_key_until_the_gateway_answers() {
    let app = TestApp::spawn().await;
    let (order, buyer, seller) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    app.publish(&request(
        order,
        buyer,
        "tok_timeout",
        &[(seller, dec("12.00"))],
    ))
    .await;
    app.wait_status(order, "authorized").await;
    app.publish(&confirmed(order, buyer)).await;
    app.wait_status(order, "captured").await;
    let attempts: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT a.operation, a.outcome, a.idempotency_key FROM payment_attempts a
         JOIN payments p ON p.id = a.payment_id WHERE p.order_id = $1 ORDER BY a.id",
    )
    .bind(order)
    .fetch_all(app.db())
    .await
    .unwrap();
    let shape: Vec<(&str, &str)> = attempts
        .iter()
        .map(|(o, r, _)| (o.as_str(), r.as_str()))
        .collect();
    assert_eq!(
        shape,
        [
            ("authorize", "retryable_error"),
            ("authorize", "retryable_error"),
            ("authorize", "succeeded"),
            ("capture", "retryable_error"),
            ("capture", "retryable_error"),
            ("capture", "succeeded"),
        ]
    );
    assert!(attempts[..3]
        .iter()
        .all(|a| a.2 == format!("authorize:{order}")));
    assert!(attempts[3..]
        .iter()
        .all(|a| a.2 == format!("capture:{order}")));
    assert_eq!(app.charges(Operation::Capture).await, 1);
    app.assert_books_clean().await;
}

#[tokio::test]
async fn a_capture_that_keeps_failing_voids_the_hold_and_tells_the_order() {
    let app = TestApp::spawn_with(|c| {
        c.mock_timeout_failures = 4;
        c.authorize_max_attempts = 6;
        c.capture_max_attempts = 3;
    })
    .await;
    let (order, buyer, seller) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    app.publish(&request(
        order,
        buyer,
        "tok_timeout",
        &[(seller, dec("20.00"))],
    ))
    .await;
    app.wait_status(order, "authorized").await;
    app.publish(&confirmed(order, buyer)).await;
    app.wait_status(order, "voided").await;
    let events = app.outbox(order).await;
    let types: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        types,
        ["PaymentAuthorized", "PaymentCaptureFailed", "PaymentVoided"]
    );
    assert_eq!(events[1].1["attempts"], 3);
    assert_eq!(events[1].1["reason"], "gateway_unavailable");
    assert_eq!(app.postings(order).await, ["authorization", "void"]);
    assert!(
        app.nets(order).await.iter().all(|(_, n)| n.is_zero()),
        "a voided order nets to zero"
    );
    assert_eq!(app.charges(Operation::Capture).await, 0);
    app.assert_books_clean().await;
}

#[tokio::test]
async fn an_authorization_that_never_gets_through_fails_as_gateway_unavailable() {
    let app = TestApp::spawn_with(|c| {
        c.mock_timeout_failures = 10;
        c.authorize_max_attempts = 3;
    })
    .await;
    let (order, buyer, seller) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    app.publish(&request(
        order,
        buyer,
        "tok_timeout",
        &[(seller, dec("1.00"))],
    ))
    .await;
    assert_eq!(app.wait_settled(order).await, "failed");
    let events = app.outbox(order).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1["reason"], "gateway_unavailable");
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM payment_attempts")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(attempts, 3);
}
