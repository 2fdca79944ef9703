//! Many buyers at once, one key many times, and every event delivered twice.

use std::time::Duration;

use e2e::stack::order_body;
use e2e::Stack;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;
use shared::events::{topics, Envelope};
use uuid::Uuid;

use crate::assert_audit_clean;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_buyers_racing_for_five_units_confirm_exactly_five() {
    let s = Stack::spawn().await;
    let seller = s.user("SELLER").await;
    let sku = s.product(&seller, "Limited Print", &[("99.00", 5)]).await[0];
    let buyers = join_all((0..20).map(|_| s.user("BUYER"))).await;
    let placed = join_all(buyers.iter().map(|b| {
        let s = &s;
        async move {
            let (status, body) = s
                .place_raw(
                    b,
                    &Uuid::now_v7().to_string(),
                    &order_body(&[(sku, 1)], "tok_visa"),
                )
                .await;
            (b, status, body)
        }
    }))
    .await;
    let mut confirmed = 0;
    let mut cancelled = 0;
    let mut refused = 0;
    for (b, status, body) in &placed {
        match *status {
            StatusCode::ACCEPTED => {
                let id = body["id"].as_str().unwrap().parse().unwrap();
                let o = s.settled(b, id).await;
                match o["status"].as_str() {
                    Some("confirmed") => confirmed += 1,
                    Some("cancelled") => {
                        assert_eq!(o["cancel_reason"], "inventory_unavailable");
                        cancelled += 1;
                    }
                    other => panic!("order {id} ended {other:?}"),
                }
            }
            // Refused at placement once the catalog already showed too few left.
            StatusCode::UNPROCESSABLE_ENTITY => {
                assert_eq!(body["error"]["code"], "ORDER_LINES_UNAVAILABLE");
                refused += 1;
            }
            other => panic!("placement answered {other}: {body}"),
        }
    }
    assert_eq!(confirmed, 5, "cancelled {cancelled}, refused {refused}");
    assert_eq!(cancelled + refused, 15);
    s.wait_stock(sku, (0, 0, 5)).await;
    assert_audit_clean(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_key_replayed_and_raced_makes_one_order_one_payment_one_charge() {
    let s = Stack::spawn().await;
    let seller = s.user("SELLER").await;
    let buyer = s.user("BUYER").await;
    let sku = s.product(&seller, "Vase", &[("18.00", 50)]).await[0];
    let body = order_body(&[(sku, 1)], "tok_visa");
    let answers = join_all((0..8).map(|_| s.place_raw(&buyer, "only-once", &body))).await;
    let ids: Vec<&Value> = answers
        .iter()
        .map(|(st, b)| {
            assert_eq!(*st, StatusCode::ACCEPTED, "{b}");
            &b["id"]
        })
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let id = ids[0].as_str().unwrap().parse().unwrap();
    s.settled(&buyer, id).await;
    let (_, again) = s.place_raw(&buyer, "only-once", &body).await;
    assert_eq!(again["id"], *ids[0]);
    assert_eq!(
        again["status"], "confirmed",
        "the replay shows the order as it is now"
    );
    let db = &s.payment_db;
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(db)
            .await
            .unwrap()
    };
    assert_eq!(count("SELECT count(*) FROM payments").await, 1);
    assert_eq!(
        count("SELECT count(*) FROM mock_gateway_operations WHERE operation = 'capture' AND outcome = 'succeeded'").await,
        1,
        "one charge"
    );
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&s.order_db)
        .await
        .unwrap();
    assert_eq!(orders, 1);
    s.wait_stock(sku, (49, 0, 1)).await;
    assert_audit_clean(&s).await;
}

/// Every event of `order` in `db`'s outbox, oldest first.
async fn events_of(db: &sqlx::PgPool, order: Uuid) -> Vec<Envelope> {
    let rows: Vec<Value> =
        sqlx::query_scalar("SELECT envelope FROM outbox WHERE aggregate_id = $1 ORDER BY id")
            .bind(order.to_string())
            .fetch_all(db)
            .await
            .unwrap();
    rows.into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect()
}

fn topic_of(env: &Envelope) -> &'static str {
    match env.event_type.as_str() {
        t if t.starts_with("Inventory") => topics::CATALOG,
        t if t.starts_with("Payment") && t != "PaymentRequested" => topics::PAYMENTS,
        _ => topics::ORDERS,
    }
}

#[tokio::test]
async fn every_event_of_a_finished_order_delivered_again_changes_nothing() {
    let s = Stack::spawn().await;
    let seller = s.user("SELLER").await;
    let buyer = s.user("BUYER").await;
    let sku = s.product(&seller, "Bowl", &[("11.00", 9)]).await[0];
    let done = s.place(&buyer, &[(sku, 2)], "tok_visa").await;
    let cancelled = s.place(&buyer, &[(sku, 1)], "tok_decline").await;
    s.settled(&buyer, done).await;
    s.settled(&buyer, cancelled).await;
    assert!(e2e::audit_when_quiet(&s, Duration::from_secs(20))
        .await
        .is_empty());

    let snapshot = || async {
        let order: Vec<(Uuid, String, String, i64)> = sqlx::query_as(
            "SELECT o.id, o.status, o.payment_status,
                    (SELECT count(*) FROM order_status_history h WHERE h.order_id = o.id AND h.applied)
             FROM orders o ORDER BY o.id",
        )
        .fetch_all(&s.order_db)
        .await
        .unwrap();
        let pay: Vec<(Uuid, String, i64)> = sqlx::query_as(
            "SELECT p.order_id, p.status, (SELECT count(*) FROM ledger_entries e
               JOIN ledger_transactions t ON t.id = e.transaction_id WHERE t.payment_id = p.id)
             FROM payments p ORDER BY p.order_id",
        )
        .fetch_all(&s.payment_db)
        .await
        .unwrap();
        (order, pay, s.stock(sku).await)
    };
    let before = snapshot().await;

    let mut all = Vec::new();
    for order in [done, cancelled] {
        for db in [&s.order_db, &s.catalog_db, &s.payment_db] {
            all.extend(events_of(db, order).await);
        }
    }
    assert!(all.len() >= 8, "{} events", all.len());
    for env in &all {
        let topic = format!("{}{}", s.topic_prefix, topic_of(env));
        shared::test_utils::publish(&shared::test_utils::brokers(), &topic, env).await;
    }
    // A marker behind the duplicates on every partition they went to: a copy under a new event id
    // of each order's last event per topic that the consumers reading it act on (only those get
    // inbox rows). Once each consumer has an inbox row for its markers, it has read every
    // duplicate before them (same key, same partition, in order).
    let mut markers = Vec::new();
    for env in &all {
        let mut m = env.clone();
        m.event_id = Uuid::now_v7();
        markers.push(m);
    }
    markers.retain(|m| {
        matches!(
            m.event_type.as_str(),
            "OrderConfirmed"
                | "OrderCancelled"
                | "InventoryReserved"
                | "PaymentFailed"
                | "PaymentCaptured"
        )
    });
    for m in &markers {
        let topic = format!("{}{}", s.topic_prefix, topic_of(m));
        shared::test_utils::publish(&shared::test_utils::brokers(), &topic, m).await;
    }
    for m in &markers {
        let dbs: Vec<&sqlx::PgPool> = match topic_of(m) {
            t if t == topics::ORDERS => vec![&s.catalog_db, &s.payment_db],
            _ => vec![&s.order_db],
        };
        for db in dbs {
            shared::test_utils::eventually(
                &format!("marker {} to be consumed", m.event_type),
                Duration::from_secs(30),
                || async {
                    let seen: bool = sqlx::query_scalar(
                        "SELECT EXISTS (SELECT 1 FROM inbox WHERE event_id = $1)",
                    )
                    .bind(m.event_id)
                    .fetch_one(db)
                    .await
                    .unwrap();
                    seen.then_some(())
                },
            )
            .await;
        }
    }
    assert_eq!(snapshot().await, before, "duplicates changed stored state");
    assert_audit_clean(&s).await;
}
