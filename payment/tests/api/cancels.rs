//! A cancel at every point of a payment's life, placed exactly by driving the handler and a worker
//! step by step; duplicates and late events. Whatever the timing, an order that ended cancelled
//! leaves no hold and no capture behind.

use payment::gateway::Operation;
use uuid::Uuid;

use crate::helpers::*;

struct Case {
    order: Uuid,
    buyer: Uuid,
}

fn case() -> Case {
    Case {
        order: Uuid::now_v7(),
        buyer: Uuid::now_v7(),
    }
}

async fn assert_released(app: &TestApp, order: Uuid) {
    assert!(
        app.nets(order).await.iter().all(|(_, n)| n.is_zero()),
        "order {order} nets to zero: {:?}",
        app.nets(order).await
    );
    app.assert_books_clean().await;
}

#[tokio::test]
async fn a_cancel_before_any_gateway_call_fails_the_payment_without_calling() {
    let app = TestApp::manual().await;
    let w = app.worker();
    let c = case();
    app.handle(&request(
        c.order,
        c.buyer,
        "tok_visa",
        &[(Uuid::now_v7(), dec("9.00"))],
    ))
    .await;
    app.handle(&cancelled(c.order, c.buyer, "awaiting_payment"))
        .await;
    app.drain(&w).await;
    assert_eq!(app.status(c.order).await.as_deref(), Some("failed"));
    let events = app.outbox(c.order).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1["reason"], "order_cancelled");
    assert_eq!(
        app.charges(Operation::Authorize).await,
        0,
        "the gateway was never called"
    );
    assert!(app.postings(c.order).await.is_empty());
}

#[tokio::test]
async fn a_cancel_after_authorization_voids_the_hold() {
    let app = TestApp::manual().await;
    let w = app.worker();
    let c = case();
    app.handle(&request(
        c.order,
        c.buyer,
        "tok_visa",
        &[(Uuid::now_v7(), dec("9.00"))],
    ))
    .await;
    app.drain(&w).await;
    assert_eq!(app.status(c.order).await.as_deref(), Some("authorized"));
    app.handle(&cancelled(c.order, c.buyer, "awaiting_payment"))
        .await;
    // A duplicate of the cancel changes nothing.
    app.handle(&cancelled(c.order, c.buyer, "awaiting_payment"))
        .await;
    app.drain(&w).await;
    assert_eq!(app.status(c.order).await.as_deref(), Some("voided"));
    assert_eq!(
        app.outbox_types(c.order).await,
        ["PaymentAuthorized", "PaymentVoided"]
    );
    assert_eq!(app.postings(c.order).await, ["authorization", "void"]);
    // A late confirmation (reordered) captures nothing.
    app.handle(&confirmed(c.order, c.buyer)).await;
    app.drain(&w).await;
    assert_eq!(app.charges(Operation::Capture).await, 0);
    assert_released(&app, c.order).await;
}

#[tokio::test]
async fn a_cancel_while_a_capture_is_scheduled_replaces_it_with_a_void() {
    let app = TestApp::manual().await;
    let w = app.worker();
    let c = case();
    app.handle(&request(
        c.order,
        c.buyer,
        "tok_visa",
        &[(Uuid::now_v7(), dec("9.00"))],
    ))
    .await;
    app.drain(&w).await;
    app.handle(&confirmed(c.order, c.buyer)).await;
    // The capture is owed but not yet made when the cancel arrives.
    app.handle(&cancelled(c.order, c.buyer, "confirmed")).await;
    let pending: Option<String> =
        sqlx::query_scalar("SELECT pending_op FROM payments WHERE order_id = $1")
            .bind(c.order)
            .fetch_one(app.db())
            .await
            .unwrap();
    assert_eq!(pending.as_deref(), Some("void"));
    app.drain(&w).await;
    assert_eq!(app.status(c.order).await.as_deref(), Some("voided"));
    assert_eq!(app.charges(Operation::Capture).await, 0);
    assert_released(&app, c.order).await;
}

#[tokio::test]
async fn a_cancel_after_capture_refunds_in_full() {
    let app = TestApp::manual().await;
    let w = app.worker();
    let c = case();
    let (s1, s2) = (Uuid::now_v7(), Uuid::now_v7());
    app.handle(&request(
        c.order,
        c.buyer,
        "tok_visa",
        &[(s1, dec("7.77")), (s2, dec("2.23"))],
    ))
    .await;
    app.drain(&w).await;
    app.handle(&confirmed(c.order, c.buyer)).await;
    app.handle(&confirmed(c.order, c.buyer)).await;
    app.drain(&w).await;
    assert_eq!(app.status(c.order).await.as_deref(), Some("captured"));
    assert_eq!(
        app.charges(Operation::Capture).await,
        1,
        "a duplicate confirmation captures once"
    );
    app.handle(&cancelled(c.order, c.buyer, "confirmed")).await;
    app.drain(&w).await;
    assert_eq!(app.status(c.order).await.as_deref(), Some("refunded"));
    let events = app.outbox(c.order).await;
    assert_eq!(events.last().unwrap().0, "PaymentRefunded");
    assert_eq!(events.last().unwrap().1["amount"], "10.00");
    assert_eq!(
        app.postings(c.order).await,
        ["authorization", "capture", "refund"]
    );
    assert_released(&app, c.order).await;
}

#[tokio::test]
async fn a_cancel_while_the_authorization_is_in_flight_voids_what_it_authorized() {
    let app = TestApp::manual().await;
    let w = app.worker();
    let c = case();
    app.handle(&request(
        c.order,
        c.buyer,
        "tok_visa",
        &[(Uuid::now_v7(), dec("4.00"))],
    ))
    .await;
    let claimed = w.claim().await.unwrap();
    assert_eq!(claimed.len(), 1);
    // The call is under way when the cancel is handled.
    app.handle(&cancelled(c.order, c.buyer, "awaiting_payment"))
        .await;
    let called = w.call(&claimed[0], Operation::Authorize).await;
    w.record(&claimed[0], Operation::Authorize, &called)
        .await
        .unwrap();
    assert_eq!(app.status(c.order).await.as_deref(), Some("authorized"));
    app.drain(&w).await;
    assert_eq!(app.status(c.order).await.as_deref(), Some("voided"));
    assert_eq!(
        app.outbox_types(c.order).await,
        ["PaymentAuthorized", "PaymentVoided"]
    );
    assert_released(&app, c.order).await;
}

#[tokio::test]
async fn repeated_requests_make_one_payment_and_a_cancel_without_a_payment_is_nothing() {
    let app = TestApp::manual().await;
    let w = app.worker();
    let c = case();
    let req = request(
        c.order,
        c.buyer,
        "tok_visa",
        &[(Uuid::now_v7(), dec("3.00"))],
    );
    app.handle(&req).await;
    app.handle(&req).await;
    app.drain(&w).await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM payments")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(app.charges(Operation::Authorize).await, 1);
    // An order cancelled before payment was ever requested: nothing is recorded or published.
    let other = case();
    app.handle(&cancelled(other.order, other.buyer, "pending"))
        .await;
    assert_eq!(app.status(other.order).await, None);
    assert!(app.outbox(other.order).await.is_empty());
    // ... unless its request turns up after all (a re-driven dead letter): it fails unpaid.
    app.handle(&request(
        other.order,
        other.buyer,
        "tok_visa",
        &[(Uuid::now_v7(), dec("3.00"))],
    ))
    .await;
    app.drain(&w).await;
    assert_eq!(app.status(other.order).await.as_deref(), Some("failed"));
    let events = app.outbox(other.order).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1["reason"], "order_cancelled");
    assert_eq!(
        app.charges(Operation::Authorize).await,
        1,
        "no second authorization"
    );
}
