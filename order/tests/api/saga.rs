//! The order side of the saga, driven by publishing catalog's and payment's events on the test
//! broker and reading what order writes; late and duplicate events; a cancel racing a payment.

use std::sync::Arc;

use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use shared::auth::Role;
use shared::events::*;
use shared::money::Currency;
use uuid::Uuid;

use crate::helpers::*;

fn usd() -> Currency {
    "USD".parse().unwrap()
}

fn lines(order: &Value) -> Vec<SkuQuantity> {
    order["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| SkuQuantity {
            sku_id: uuid(&i["sku_id"]),
            quantity: i["quantity"].as_u64().unwrap() as u32,
        })
        .collect()
}

fn reserved(order: &Value) -> InventoryReserved {
    InventoryReserved {
        order_id: uuid(&order["id"]),
        lines: lines(order),
    }
}

fn authorized(order: &Value) -> PaymentAuthorized {
    PaymentAuthorized {
        order_id: uuid(&order["id"]),
        payment_id: Uuid::now_v7(),
        amount: order["total_amount"].as_str().unwrap().parse().unwrap(),
        currency: usd(),
        gateway_reference: "gw_1".into(),
    }
}

#[tokio::test]
async fn a_paid_order_is_confirmed_captured_shipped_by_each_seller_and_delivered() {
    let app = TestApp::spawn().await;
    let other_seller = user(Role::Seller);
    let a = app.product("Kettle", &[("30.00", 9)]).await[0];
    let b_sku = app
        .product_of(&other_seller, "Toaster", &[("45.50", 9, "USD")])
        .await[0];
    let b = buyer();
    let o = app.place(&b, &[(a, 1), (b_sku, 2)]).await;
    let id = o["id"].as_str().unwrap();

    app.publish(&reserved(&o)).await;
    app.wait_status(&b, id, "awaiting_payment").await;
    let events = app.outbox(id).await;
    assert_eq!(events[1].0, "PaymentRequested");
    let req = &events[1].1;
    assert_eq!(req["amount"], "121.00");
    assert_eq!(req["currency"], "USD");
    assert_eq!(req["payment_method"], "tok_visa");
    assert_eq!(req["buyer_id"], b.id.to_string());
    let mut amounts: Vec<(String, String)> = req["seller_amounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["seller_id"].as_str().unwrap().to_owned(),
                s["amount"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    amounts.sort();
    let mut expected = vec![
        (app.seller.id.to_string(), "30.00".to_owned()),
        (other_seller.id.to_string(), "91.00".to_owned()),
    ];
    expected.sort();
    assert_eq!(amounts, expected, "per-seller sums of their lines");

    app.publish(&authorized(&o)).await;
    let confirmed = app.wait_status(&b, id, "confirmed").await;
    assert_eq!(confirmed["payment_status"], "authorized");
    assert!(
        confirmed["payment_deadline"].is_null(),
        "a paid order has no deadline"
    );
    let events = app.outbox(id).await;
    assert_eq!(events[2].0, "OrderConfirmed");
    assert_eq!(events[2].1["items"].as_array().unwrap().len(), 2);

    // Nothing ships before the money is captured.
    let resp = app
        .post_auth(
            &format!("/api/v1/orders/{id}/ship"),
            &app.seller.token,
            json!({}),
        )
        .await;
    let err = assert_error(resp, StatusCode::CONFLICT, "ORDER_NOT_SHIPPABLE").await;
    assert_eq!(err["error"]["details"]["payment_status"], "authorized");

    app.publish(&PaymentCaptured {
        order_id: uuid(&o["id"]),
        payment_id: Uuid::now_v7(),
        amount: Decimal::new(12100, 2),
        currency: usd(),
    })
    .await;
    let captured = app.wait_history(&b, id, 4).await;
    assert_eq!(captured["payment_status"], "captured", "{captured}");
    assert_eq!(captured["status"], "confirmed");

    // Each seller ships their own lines; the order ships with the last one.
    let ship = |token: String, tracking: &'static str| {
        let app = &app;
        async move {
            app.post_auth(
                &format!("/api/v1/orders/{id}/ship"),
                &token,
                json!({"tracking_number": tracking}),
            )
            .await
        }
    };
    let resp = ship(app.seller.token.clone(), "TRK-1").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let part: Value = resp.json().await.unwrap();
    assert_eq!(part["status"], "confirmed", "one seller of two shipped");
    assert_eq!(part["items"][0]["tracking_number"], "TRK-1");
    // Part of it is on its way: it can no longer be cancelled.
    let resp = app
        .post_auth(&format!("/api/v1/orders/{id}/cancel"), &b.token, json!({}))
        .await;
    assert_error(resp, StatusCode::CONFLICT, "ORDER_NOT_CANCELLABLE").await;
    let resp = ship(other_seller.token.clone(), "TRK-2").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let all: Value = resp.json().await.unwrap();
    assert_eq!(all["status"], "shipped");

    let resp = app
        .post_auth(&format!("/api/v1/orders/{id}/deliver"), &b.token, json!({}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let done: Value = resp.json().await.unwrap();
    assert_eq!(done["status"], "delivered");
    let path: Vec<&str> = done["status_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        path,
        [
            "pending",
            "awaiting_payment",
            "confirmed",
            "confirmed",
            "shipped",
            "delivered"
        ]
    );
    // Nothing more is announced after confirmation: no event type exists for shipping yet.
    assert_eq!(
        app.outbox_types(id).await,
        ["OrderCreated", "PaymentRequested", "OrderConfirmed"]
    );
}

#[tokio::test]
async fn failures_cancel_the_order_with_their_reason() {
    let app = TestApp::spawn().await;
    let sku = app.product("Drum", &[("9.00", 9)]).await[0];
    let b = buyer();

    // No stock: cancelled before payment, the failing lines recorded.
    let o1 = app.place(&b, &[(sku, 2)]).await;
    let id1 = o1["id"].as_str().unwrap();
    app.publish(&InventoryReservationFailed {
        order_id: uuid(&o1["id"]),
        reason: ReservationFailure::InsufficientStock,
        lines: vec![FailedLine {
            sku_id: sku,
            reason: ReservationFailure::InsufficientStock,
            requested: 2,
            available: 1,
        }],
    })
    .await;
    let c1 = app.wait_status(&b, id1, "cancelled").await;
    assert_eq!(c1["cancel_reason"], "inventory_unavailable");
    let details: Value = sqlx::query_scalar(
        "SELECT details FROM order_status_history WHERE order_id = $1 AND status = 'cancelled'",
    )
    .bind(uuid(&o1["id"]))
    .fetch_one(app.db())
    .await
    .unwrap();
    assert_eq!(details["lines"][0]["available"], 1);
    let events = app.outbox(id1).await;
    assert_eq!(events[1].0, "OrderCancelled");
    assert_eq!(events[1].1["reason"], "inventory_unavailable");
    assert_eq!(events[1].1["previous_status"], "pending");

    // Declined: cancelled, payment failed.
    let o2 = app.place(&b, &[(sku, 1)]).await;
    let id2 = o2["id"].as_str().unwrap();
    app.publish(&reserved(&o2)).await;
    app.wait_status(&b, id2, "awaiting_payment").await;
    app.publish(&PaymentFailed {
        order_id: uuid(&o2["id"]),
        payment_id: Uuid::now_v7(),
        reason: "card_declined".into(),
    })
    .await;
    let c2 = app.wait_status(&b, id2, "cancelled").await;
    assert_eq!(c2["cancel_reason"], "payment_failed");
    assert_eq!(c2["payment_status"], "failed");
    assert_eq!(
        app.outbox_types(id2).await,
        ["OrderCreated", "PaymentRequested", "OrderCancelled"]
    );

    // Capture failed after confirmation: cancelled, and the void that follows is mirrored.
    let o3 = app.place(&b, &[(sku, 1)]).await;
    let id3 = o3["id"].as_str().unwrap();
    app.publish(&reserved(&o3)).await;
    app.wait_status(&b, id3, "awaiting_payment").await;
    app.publish(&authorized(&o3)).await;
    app.wait_status(&b, id3, "confirmed").await;
    app.publish(&PaymentCaptureFailed {
        order_id: uuid(&o3["id"]),
        payment_id: Uuid::now_v7(),
        reason: "gateway_timeout".into(),
        attempts: 5,
    })
    .await;
    let c3 = app.wait_status(&b, id3, "cancelled").await;
    assert_eq!(c3["cancel_reason"], "capture_failed");
    let events = app.outbox(id3).await;
    assert_eq!(events.last().unwrap().1["previous_status"], "confirmed");
    app.publish(&PaymentVoided {
        order_id: uuid(&o3["id"]),
        payment_id: Uuid::now_v7(),
        amount: Decimal::new(900, 2),
        currency: usd(),
    })
    .await;
    test_wait_payment(&app, &b, id3, "voided").await;
}

async fn test_wait_payment(app: &TestApp, b: &User, id: &str, status: &str) -> Value {
    shared::test_utils::eventually(
        &format!("payment status {status}"),
        std::time::Duration::from_secs(30),
        || async {
            let o = app.order(&b.token, id).await;
            (o["payment_status"] == status).then_some(o)
        },
    )
    .await
}

#[tokio::test]
async fn late_and_duplicate_events_are_recorded_and_ignored() {
    let app = TestApp::spawn().await;
    let sku = app.product("Harp", &[("50.00", 9)]).await[0];
    let b = buyer();
    let o = app.place(&b, &[(sku, 1)]).await;
    let id = o["id"].as_str().unwrap();

    // The same reservation announced twice under two event ids (a re-driven dead letter):
    // one payment request.
    app.publish(&reserved(&o)).await;
    app.publish(&reserved(&o)).await;
    let o2 = app.wait_history(&b, id, 3).await;
    let last = &o2["status_history"][2];
    assert_eq!(last["trigger"], "InventoryReserved");
    assert_eq!(last["ignored"], true);
    assert_eq!(last["status"], "awaiting_payment");
    assert_eq!(
        app.outbox_types(id).await,
        ["OrderCreated", "PaymentRequested"]
    );

    // Cancelled (as the deadline would) before payment answers; then the authorization arrives.
    let resp = app
        .post_auth(&format!("/api/v1/orders/{id}/cancel"), &b.token, json!({}))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    app.publish(&authorized(&o)).await;
    let after = test_wait_payment(&app, &b, id, "authorized").await;
    assert_eq!(
        after["status"], "cancelled",
        "a late authorization does not revive the order"
    );
    let last = after["status_history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["trigger"], "PaymentAuthorized");
    assert_eq!(last["ignored"], true);
    assert_eq!(
        last["payment_status"], "authorized",
        "the history shows what was mirrored"
    );
    // What payment relies on to void it: the cancel follows the request for this order's key.
    assert_eq!(
        app.outbox_types(id).await,
        ["OrderCreated", "PaymentRequested", "OrderCancelled"]
    );
    // ... and payment's void is mirrored.
    app.publish(&PaymentVoided {
        order_id: uuid(&o["id"]),
        payment_id: Uuid::now_v7(),
        amount: Decimal::new(5000, 2),
        currency: usd(),
    })
    .await;
    test_wait_payment(&app, &b, id, "voided").await;

    // A reservation arriving after a cancel of a pending order requests no payment.
    let p = app.place(&b, &[(sku, 1)]).await;
    let pid = p["id"].as_str().unwrap();
    let resp = app
        .post_auth(&format!("/api/v1/orders/{pid}/cancel"), &b.token, json!({}))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    app.publish(&reserved(&p)).await;
    let late = app.wait_history(&b, pid, 3).await;
    assert_eq!(late["status"], "cancelled");
    assert_eq!(late["status_history"][2]["ignored"], true);
    assert_eq!(
        app.outbox_types(pid).await,
        ["OrderCreated", "OrderCancelled"]
    );

    // An event for an order this service never had is skipped without stopping the consumer:
    // a later event of a real order is still handled.
    app.publish(&InventoryReserved {
        order_id: Uuid::now_v7(),
        lines: vec![],
    })
    .await;
    let q = app.place(&b, &[(sku, 1)]).await;
    app.publish(&reserved(&q)).await;
    app.wait_status(&b, q["id"].as_str().unwrap(), "awaiting_payment")
        .await;
}

/// A buyer's cancel racing payment's answer, on a multi-threaded runtime, 100 rounds. The answer is
/// handled the way the consumer does (one transaction), the cancel through the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancel_racing_the_payment_answer_has_one_consistent_outcome() {
    let app = TestApp::spawn().await;
    let sku = app.product("Bolt", &[("1.00", 1000)]).await[0];
    let b = buyer();
    let handler = Arc::new(order::saga::SagaHandler);
    let (mut cancel_won, mut payment_won) = (0, 0);
    for round in 0..100 {
        let o = app.place(&b, &[(sku, 1)]).await;
        let id = o["id"].as_str().unwrap().to_owned();
        let oid = uuid(&o["id"]);
        let mut tx = app.db().begin().await.unwrap();
        let env = Envelope::new("catalog", &reserved(&o), &EventMeta::default()).unwrap();
        handler.apply(&mut tx, &env).await.unwrap();
        tx.commit().await.unwrap();

        // Even rounds: an authorization (confirmed orders can still be cancelled after it);
        // odd rounds: a decline (which itself cancels, so exactly one cancel may win).
        let answer = if round % 2 == 0 {
            Envelope::new("payment", &authorized(&o), &EventMeta::default()).unwrap()
        } else {
            Envelope::new(
                "payment",
                &PaymentFailed {
                    order_id: oid,
                    payment_id: Uuid::now_v7(),
                    reason: "card_declined".into(),
                },
                &EventMeta::default(),
            )
            .unwrap()
        };
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let pay = {
            let (db, handler, barrier) = (app.db().clone(), handler.clone(), barrier.clone());
            tokio::spawn(async move {
                let mut tx = db.begin().await.unwrap();
                barrier.wait().await;
                handler.apply(&mut tx, &answer).await.unwrap();
                tx.commit().await.unwrap();
            })
        };
        let cancel = {
            let (http, token, barrier) = (app.http.clone(), b.token.clone(), barrier.clone());
            let id = id.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                http.post_auth(&format!("/api/v1/orders/{id}/cancel"), &token, json!({}))
                    .await
                    .status()
            })
        };
        pay.await.unwrap();
        let cancel_status = cancel.await.unwrap();
        assert!(
            cancel_status == StatusCode::ACCEPTED || cancel_status == StatusCode::CONFLICT,
            "round {round}: cancel answered {cancel_status}"
        );

        let order = app.order(&b.token, &id).await;
        assert_eq!(order["status"], "cancelled", "round {round}: {order}");
        let events = app.outbox_types(&id).await;
        let cancels: Vec<(String, Value)> = app
            .outbox(&id)
            .await
            .into_iter()
            .filter(|(t, _)| t == "OrderCancelled")
            .collect();
        assert_eq!(
            cancels.len(),
            1,
            "round {round}: exactly one cancel announced: {events:?}"
        );
        let history: Vec<String> = order["status_history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h["ignored"] == false)
            .map(|h| h["status"].as_str().unwrap().to_owned())
            .collect();
        let confirmed = events.contains(&"OrderConfirmed".to_owned());
        if round % 2 == 0 {
            if confirmed {
                payment_won += 1;
                // Paid, then cancelled by the buyer: the cancel says stock was committed.
                assert_eq!(
                    history,
                    ["pending", "awaiting_payment", "confirmed", "cancelled"]
                );
                assert_eq!(cancels[0].1["previous_status"], "confirmed");
                assert_eq!(cancel_status, StatusCode::ACCEPTED);
            } else {
                cancel_won += 1;
                assert_eq!(history, ["pending", "awaiting_payment", "cancelled"]);
                assert_eq!(cancels[0].1["previous_status"], "awaiting_payment");
                assert_eq!(
                    order["payment_status"], "authorized",
                    "the late hold is mirrored for the void"
                );
            }
        } else {
            assert!(!confirmed);
            assert_eq!(
                history,
                ["pending", "awaiting_payment", "cancelled"],
                "round {round}"
            );
            let winner = if cancel_status == StatusCode::ACCEPTED {
                cancel_won += 1;
                "buyer_requested"
            } else {
                payment_won += 1;
                "payment_failed"
            };
            assert_eq!(order["cancel_reason"], winner, "round {round}");
            assert_eq!(cancels[0].1["reason"], winner);
            assert_eq!(order["payment_status"], "failed");
        }
    }
    eprintln!("cancel won {cancel_won}, payment won {payment_won}");
}
