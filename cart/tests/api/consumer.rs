//! A confirmed order takes its lines out of the buyer's cart, once.

use std::time::Duration;

use serde_json::Value;
use shared::events::{Envelope, EventMeta, OrderConfirmed, SkuQuantity};
use uuid::Uuid;

use crate::helpers::{buyer, Buyer, TestApp};

fn confirmed(order: Uuid, b: &Buyer, skus: &[&str]) -> Envelope {
    Envelope::new(
        "order",
        &OrderConfirmed {
            order_id: order,
            buyer_id: b.id,
            items: skus
                .iter()
                .map(|s| SkuQuantity {
                    sku_id: s.parse().unwrap(),
                    quantity: 1,
                })
                .collect(),
        },
        &EventMeta::default(),
    )
    .unwrap()
}

async fn wait_for(app: &TestApp, b: &Buyer, lines: usize) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let cart = app.get_cart(b).await;
        if cart["items"].as_array().unwrap().len() == lines
            || tokio::time::Instant::now() > deadline
        {
            return cart;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_confirmed_order_removes_the_bought_lines_once() {
    let app = TestApp::spawn().await;
    let skus = app.product("Pair", &[("5.00", 50), ("6.00", 50)]).await;
    let (b, other) = (buyer(), buyer());
    app.add_ok(&b, &skus[0], 1).await;
    app.add_ok(&b, &skus[1], 2).await;
    app.add_ok(&other, &skus[0], 1).await;

    let order = Uuid::now_v7();
    let event = confirmed(order, &b, &[&skus[0]]);
    app.publish_order_event(&event).await;
    let cart = wait_for(&app, &b, 1).await;
    assert_eq!(cart["items"].as_array().unwrap().len(), 1, "{cart}");
    assert_eq!(cart["items"][0]["sku_id"], skus[1]);
    assert_eq!(
        app.get_cart(&other).await["items"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "other buyers untouched"
    );

    // The buyer puts the item back; a redelivery of the same event must not take it again.
    app.add_ok(&b, &skus[0], 1).await;
    app.publish_order_event(&event).await;
    // A later event of the same order (same key, same partition) is consumed after the
    // redelivery, so once its effect shows, the redelivery has been handled.
    let marker = confirmed(order, &b, &[&skus[1]]);
    app.publish_order_event(&marker).await;
    let cart = wait_for(&app, &b, 1).await;
    let items = cart["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{cart}");
    assert_eq!(
        items[0]["sku_id"], skus[0],
        "the re-added line survived the duplicate"
    );
}
