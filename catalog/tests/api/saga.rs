//! The inventory consumer on a real broker: events on `orders.events` in, outcome events on
//! `catalog.events` out, through the inbox and the outbox relay.

use std::time::Duration;

use futures::future::join_all;
use shared::events::topics;
use shared::events::{
    InventoryReleased, InventoryReservationFailed, InventoryReserved, ReservationFailure,
};
use shared::test_utils::brokers;
use uuid::Uuid;

use crate::helpers::{order_cancelled, order_confirmed, order_created, Caller, TestApp};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn the_saga_steps_run_from_the_broker_and_announce_their_outcome() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let (_, sku) = app.listed(&seller, "Saga mug", "12.00", 10).await;
    let events = app.catalog_events();
    let order = Uuid::now_v7();

    // Reserve, delivered twice: one hold.
    let created = order_created(order, &[(&sku, 3, "12.00")]);
    app.publish_order_event(&created).await;
    app.publish_order_event(&created).await;
    let reserved = events
        .next_for(order, WAIT)
        .await
        .expect("InventoryReserved");
    assert_eq!(reserved.event_type, "InventoryReserved");
    assert_eq!(reserved.causation_id, Some(created.event_id));
    let body: InventoryReserved = reserved.decode().unwrap();
    assert_eq!(body.lines[0].quantity, 3);

    // Confirm: committed. (Its outcome arriving proves the duplicate before it was consumed.)
    app.publish_order_event(&order_confirmed(order, &[(&sku, 3)]))
        .await;
    let committed = events
        .next_for(order, WAIT)
        .await
        .expect("InventoryCommitted");
    assert_eq!(committed.event_type, "InventoryCommitted");
    assert_eq!(
        app.sku_row(&sku).await,
        (7, 0, 3),
        "reserved once, then sold"
    );

    // Cancel after confirm: restocked.
    app.publish_order_event(&order_cancelled(order, &[(&sku, 3)], "confirmed"))
        .await;
    let released = events
        .next_for(order, WAIT)
        .await
        .expect("InventoryReleased");
    let body: InventoryReleased = released.decode().unwrap();
    assert!(body.restocked);
    assert_eq!(app.sku_row(&sku).await, (10, 0, 0));
    assert_eq!(app.audit().await["consistent"], true);
}

#[tokio::test]
async fn a_failed_reservation_and_a_released_hold_are_announced() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let (_, sku) = app.listed(&seller, "Scarce", "5.00", 1).await;
    let events = app.catalog_events();

    let too_many = Uuid::now_v7();
    app.publish_order_event(&order_created(too_many, &[(&sku, 2, "5.00")]))
        .await;
    let failed = events
        .next_for(too_many, WAIT)
        .await
        .expect("InventoryReservationFailed");
    let body: InventoryReservationFailed = failed.decode().unwrap();
    assert_eq!(body.reason, ReservationFailure::InsufficientStock);
    assert_eq!(body.lines[0].requested, 2);
    assert_eq!(body.lines[0].available, 1);

    let held = Uuid::now_v7();
    app.publish_order_event(&order_created(held, &[(&sku, 1, "5.00")]))
        .await;
    assert_eq!(
        events
            .next_for(held, WAIT)
            .await
            .expect("reserved")
            .event_type,
        "InventoryReserved"
    );
    app.publish_order_event(&order_cancelled(held, &[(&sku, 1)], "awaiting_payment"))
        .await;
    let released = events.next_for(held, WAIT).await.expect("released");
    let body: InventoryReleased = released.decode().unwrap();
    assert!(!body.restocked);
    assert_eq!(app.sku_row(&sku).await, (1, 0, 0));
}

/// Sixteen one-unit orders for a SKU with 5 in stock, all published at once: every order gets
/// exactly one answer on `catalog.events`, 5 reserved and 11 refused for stock, and the row holds
/// exactly the 5 granted.
#[tokio::test]
async fn a_burst_of_orders_from_the_broker_reserves_exactly_the_stock_there_is() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let (_, sku) = app.listed(&seller, "Limited lamp", "10.00", 5).await;
    let events = app.catalog_events();
    let orders: Vec<Uuid> = (0..16).map(|_| Uuid::now_v7()).collect();
    let created: Vec<_> = orders
        .iter()
        .map(|o| order_created(*o, &[(&sku, 1, "10.00")]))
        .collect();
    join_all(created.iter().map(|env| app.publish_order_event(env))).await;

    let answers = events.first_of_each(&orders, Duration::from_secs(60)).await;
    let (mut reserved, mut failed) = (0, 0);
    for (order, env) in &answers {
        let cause = created.iter().find(|c| c.aggregate_id == order.to_string());
        assert_eq!(env.causation_id, cause.map(|c| c.event_id));
        match env.event_type.as_str() {
            "InventoryReserved" => {
                let body: InventoryReserved = env.decode().unwrap();
                assert_eq!(body.lines[0].quantity, 1);
                reserved += 1;
            }
            "InventoryReservationFailed" => {
                let body: InventoryReservationFailed = env.decode().unwrap();
                assert_eq!(body.reason, ReservationFailure::InsufficientStock);
                assert_eq!(body.lines[0].available, 0, "refused only once sold out");
                failed += 1;
            }
            other => panic!("unexpected answer {other} for {order}"),
        }
    }
    assert_eq!((reserved, failed), (5, 11));
    // One outcome per order, never a second (a redelivery reserving again would add one).
    for order in &orders {
        assert_eq!(app.outbox_types(*order).await.len(), 1, "{order}");
    }
    assert_eq!(app.sku_row(&sku).await, (5, 5, 0));
    let audit = app.audit().await;
    assert_eq!(audit["consistent"], true, "{audit}");
}

/// An `OrderCreated` the consumer dead-lettered, then the order's cancel, then the dead letter
/// re-driven (`shared::dlq::redrive`, the operator's tool): the late `OrderCreated` is consumed and
/// holds nothing, since the cancel left a record that the order is over.
#[tokio::test]
async fn an_order_created_redriven_from_the_dlq_after_its_cancel_holds_nothing() {
    use rdkafka::producer::FutureRecord;
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let (_, sku) = app.listed(&seller, "Redriven mug", "12.00", 10).await;
    let order = Uuid::now_v7();
    let created = order_created(order, &[(&sku, 3, "12.00")]);

    // Dead-lettered: on `orders.events.dlq` with the headers the consumer writes there.
    let source = format!("{}{}", app.topic_prefix, topics::ORDERS);
    let dlq = topics::dlq(&source);
    let mut headers: Vec<(&str, String)> = created.headers();
    headers.extend([
        ("dlq_reason", "permanent".to_owned()),
        ("dlq_error", "test: dead-lettered".to_owned()),
        ("dlq_source_topic", source.clone()),
        ("dlq_source_partition", "0".to_owned()),
        ("dlq_source_offset", "0".to_owned()),
        ("dlq_consumer_group", app.consumer_group()),
        ("dlq_attempts", "1".to_owned()),
        ("dlq_failed_at", chrono::Utc::now().to_rfc3339()),
    ]);
    let producer = shared::kafka::producer(&brokers(), "test-dlq").unwrap();
    let payload = created.to_json();
    producer
        .send(
            FutureRecord::to(&dlq)
                .key(created.aggregate_id.as_bytes())
                .payload(&payload)
                .headers(shared::kafka::headers(&headers)),
            Duration::from_secs(10),
        )
        .await
        .unwrap();

    // The order is cancelled while its OrderCreated sits in the DLQ: nothing was held.
    let cancelled = order_cancelled(order, &[(&sku, 3)], "pending");
    app.publish_order_event(&cancelled).await;
    app.wait_handled(cancelled.event_id, WAIT).await;
    assert_eq!(app.sku_row(&sku).await, (10, 0, 0));

    // The operator re-drives the DLQ: the OrderCreated is back on orders.events and consumed.
    let moved = shared::dlq::redrive(
        &brokers(),
        &dlq,
        &format!("redrive-{}", Uuid::now_v7().simple()),
        Duration::from_secs(3),
    )
    .await
    .unwrap();
    assert_eq!(moved, 1, "the one dead letter was re-driven");
    app.wait_handled(created.event_id, WAIT).await;

    assert_eq!(
        app.sku_row(&sku).await,
        (10, 0, 0),
        "no hold for a dead order"
    );
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM reservations WHERE order_id = $1")
        .bind(order)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(held, 0, "no reservation row");
    assert!(
        !app.outbox_types(order)
            .await
            .contains(&"InventoryReserved".to_owned()),
        "nothing announced as reserved"
    );
    let audit = app.audit().await;
    assert_eq!(audit["consistent"], true, "{audit}");
}
