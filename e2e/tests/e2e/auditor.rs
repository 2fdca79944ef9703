//! The auditor itself must be able to fail: each kind of broken promise it claims to catch is
//! made for real here, and it has to name it.

use std::time::Duration;

use e2e::Stack;
use shared::events::{topics, Envelope, EventMeta, OrderCreated};
use uuid::Uuid;

#[tokio::test]
async fn the_auditor_names_unsettled_orders_unpaid_confirmations_lost_stock_and_dead_letters() {
    let s = Stack::spawn().await;
    let seller = s.user("SELLER").await;
    let buyer = s.user("BUYER").await;
    let sku = s.product(&seller, "Mirror", &[("10.00", 5)]).await[0];
    let id = s.place(&buyer, &[(sku, 1)], "tok_visa").await;
    s.settled(&buyer, id).await;
    assert!(e2e::audit_when_quiet(&s, Duration::from_secs(20))
        .await
        .is_empty());

    // A confirmed order whose payment says only authorized (payment and order disagree, and the
    // ledger holds a capture the payment does not show).
    sqlx::query("UPDATE payments SET status = 'authorized' WHERE order_id = $1")
        .bind(id)
        .execute(&s.payment_db)
        .await
        .unwrap();
    // A unit that vanished from the shelf without a stock movement.
    sqlx::query("UPDATE skus SET stock_quantity = stock_quantity - 1 WHERE id = $1")
        .bind(sku)
        .execute(&s.catalog_db)
        .await
        .unwrap();
    // An order stuck before reservation.
    sqlx::query(
        "INSERT INTO orders (id, buyer_id, currency, total_amount, shipping_address, payment_method,
                             idempotency_key, request_digest, deadline_at)
         VALUES ($1, $2, 'USD', 0, '{}', 'tok_visa', 'stuck', '\\x00', now() + interval '1 hour')",
    )
    .bind(Uuid::now_v7())
    .bind(buyer.id)
    .execute(&s.order_db)
    .await
    .unwrap();
    // A poison message: catalog and payment dead-letter it.
    let mut poison = Envelope::new(
        "test",
        &OrderCreated {
            order_id: Uuid::now_v7(),
            buyer_id: buyer.id,
            items: vec![],
            total: rust_decimal::Decimal::ONE,
            currency: "USD".parse().unwrap(),
            created_at: chrono_now(),
        },
        &EventMeta::default(),
    )
    .unwrap();
    poison.payload = serde_json::json!({"not": "an order"});
    shared::test_utils::publish(
        &shared::test_utils::brokers(),
        &format!("{}{}", s.topic_prefix, topics::ORDERS),
        &poison,
    )
    .await;

    let problems = shared::test_utils::eventually(
        "the dead letter to show",
        Duration::from_secs(30),
        || async {
            let p = e2e::audit(&s).await;
            p.iter().any(|l| l.contains("dead letters")).then_some(p)
        },
    )
    .await;
    let text = problems.join("\n");
    for expected in [
        &format!("order {id} is confirmed but its payment is Some(\"authorized\")"),
        "not conserved",
        "is still pending",
        "reconciliation: order",
        "orders.events.dlq",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}
