//! A worker that dies between the gateway call and recording its outcome: the call is made again
//! under the same idempotency key after the lease runs out, and the gateway moves money once.

use std::time::Duration;

use payment::gateway::{GatewayOutcome, Operation};
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test]
async fn a_crash_between_call_and_record_neither_loses_the_payment_nor_charges_twice() {
    let app = TestApp::manual().await;
    let (order, buyer) = (Uuid::now_v7(), Uuid::now_v7());
    app.handle(&request(
        order,
        buyer,
        "tok_visa",
        &[(Uuid::now_v7(), dec("15.00"))],
    ))
    .await;

    // The first worker claims, calls, and dies before recording.
    let doomed = app.worker();
    let claimed = doomed.claim().await.unwrap();
    let first = doomed.call(&claimed[0], Operation::Authorize).await;
    drop(doomed);
    let GatewayOutcome::Succeeded { reference } = first.outcome else {
        panic!("authorization failed: {first:?}");
    };
    assert_eq!(app.charges(Operation::Authorize).await, 1);
    assert_eq!(
        app.status(order).await.as_deref(),
        Some("requested"),
        "nothing recorded"
    );

    // Another worker finds nothing while the lease holds, then takes the call over.
    let survivor = app.worker();
    assert_eq!(
        survivor.run_once().await.unwrap(),
        0,
        "the lease still holds"
    );
    shared::test_utils::eventually(
        "the lease to run out and the call to be made again",
        Duration::from_secs(10),
        || async { (survivor.run_once().await.unwrap() > 0).then_some(()) },
    )
    .await;
    assert_eq!(app.status(order).await.as_deref(), Some("authorized"));
    let stored: Option<String> =
        sqlx::query_scalar("SELECT gateway_reference FROM payments WHERE order_id = $1")
            .bind(order)
            .fetch_one(app.db())
            .await
            .unwrap();
    assert_eq!(
        stored,
        Some(reference),
        "the repeated call got the first call's answer"
    );
    assert_eq!(
        app.charges(Operation::Authorize).await,
        1,
        "no second charge"
    );

    // The same for a capture.
    app.handle(&confirmed(order, buyer)).await;
    let doomed = app.worker();
    let claimed = doomed.claim().await.unwrap();
    doomed.call(&claimed[0], Operation::Capture).await;
    drop(doomed);
    shared::test_utils::eventually(
        "the capture to be taken over",
        Duration::from_secs(10),
        || async {
            survivor.run_once().await.unwrap();
            (app.status(order).await.as_deref() == Some("captured")).then_some(())
        },
    )
    .await;
    assert_eq!(app.charges(Operation::Capture).await, 1);
    assert_eq!(
        app.outbox_types(order).await,
        ["PaymentAuthorized", "PaymentCaptured"]
    );
    app.assert_books_clean().await;
}

#[tokio::test]
async fn a_cancel_after_a_capture_whose_answer_was_lost_refunds_it_and_never_voids_it() {
    let app = TestApp::manual().await;
    let (order, buyer) = (Uuid::now_v7(), Uuid::now_v7());
    let w = app.worker();
    app.handle(&request(
        order,
        buyer,
        "tok_visa",
        &[(Uuid::now_v7(), dec("21.00"))],
    ))
    .await;
    app.drain(&w).await;
    app.handle(&confirmed(order, buyer)).await;
    // The capture goes through at the gateway; its worker dies before recording it.
    let doomed = app.worker();
    let claimed = doomed.claim().await.unwrap();
    doomed.call(&claimed[0], Operation::Capture).await;
    drop(doomed);
    assert_eq!(app.charges(Operation::Capture).await, 1);
    // The lease runs out; then the order is cancelled.
    shared::test_utils::eventually(
        "the capture's lease to run out",
        Duration::from_secs(10),
        || async {
            let expired: bool = sqlx::query_scalar(
                "SELECT claimed_until < now() FROM payments WHERE order_id = $1",
            )
            .bind(order)
            .fetch_one(app.db())
            .await
            .unwrap();
            expired.then_some(())
        },
    )
    .await;
    app.handle(&cancelled(order, buyer, "confirmed")).await;
    app.drain(&w).await;
    assert_eq!(
        app.status(order).await.as_deref(),
        Some("refunded"),
        "the lost capture is found and refunded"
    );
    assert_eq!(
        app.postings(order).await,
        ["authorization", "capture", "refund"]
    );
    assert_eq!(
        app.charges(Operation::Void).await,
        0,
        "a captured payment is never voided"
    );
    app.assert_books_clean().await;
}
