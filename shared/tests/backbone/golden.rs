//! Golden files pin the JSON of every event in its envelope. A change to the wire format shows up
//! as a failing test and a diff; accept it deliberately with `UPDATE_GOLDEN=1`, and bump the
//! event's version when old readers could not read the new shape.

use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use shared::events::*;
use shared::money::Currency;
use uuid::Uuid;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | n)
}

fn usd() -> Currency {
    "USD".parse().unwrap()
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn check<E: Event + Serialize>(event: &E) {
    let mut env = Envelope::new(
        "golden",
        event,
        &EventMeta {
            correlation_id: Some("req-golden".into()),
            causation_id: Some(id(99)),
        },
    )
    .unwrap();
    env.event_id = id(1);
    env.occurred_at = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
    env.traceparent = Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into());
    let actual = serde_json::to_string_pretty(&env).unwrap() + "\n";
    let path = format!(
        "{}/tests/golden/{}.v{}.json",
        env!("CARGO_MANIFEST_DIR"),
        E::TYPE,
        E::VERSION
    );
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{path} is missing: run with UPDATE_GOLDEN=1 and review it"));
    assert_eq!(actual, expected, "the wire format of {} changed", E::TYPE);
    // And what is pinned decodes back to the same event.
    let back = Envelope::from_json(expected.as_bytes()).unwrap();
    assert_eq!(
        serde_json::to_value(back.decode::<E>().unwrap()).unwrap(),
        serde_json::to_value(event).unwrap()
    );
}

fn line() -> OrderLine {
    OrderLine {
        sku_id: id(10),
        product_id: id(11),
        seller_id: id(12),
        product_name: "Espresso cup".into(),
        quantity: 2,
        unit_price: dec("19.99"),
        currency: usd(),
    }
}

fn sku(q: u32) -> SkuQuantity {
    SkuQuantity {
        sku_id: id(10),
        quantity: q,
    }
}

#[test]
fn every_saga_event_has_a_pinned_wire_format() {
    let order = id(2);
    check(&OrderCreated {
        order_id: order,
        buyer_id: id(3),
        items: vec![line()],
        total: dec("39.98"),
        currency: usd(),
        created_at: Utc.with_ymd_and_hms(2026, 11, 27, 11, 59, 0).unwrap(),
    });
    check(&PaymentRequested {
        order_id: order,
        buyer_id: id(3),
        amount: dec("39.98"),
        currency: usd(),
        payment_method: "tok_visa".into(),
        seller_amounts: vec![SellerAmount {
            seller_id: id(12),
            amount: dec("39.98"),
        }],
    });
    check(&OrderConfirmed {
        order_id: order,
        buyer_id: id(3),
        items: vec![sku(2)],
    });
    check(&OrderCancelled {
        order_id: order,
        buyer_id: id(3),
        reason: CancelReason::PaymentTimeout,
        previous_status: "awaiting_payment".into(),
        items: vec![sku(2)],
    });
    check(&InventoryReserved {
        order_id: order,
        lines: vec![sku(2)],
    });
    check(&InventoryReservationFailed {
        order_id: order,
        reason: ReservationFailure::InsufficientStock,
        lines: vec![FailedLine {
            sku_id: id(10),
            reason: ReservationFailure::InsufficientStock,
            requested: 2,
            available: 1,
        }],
    });
    check(&InventoryCommitted {
        order_id: order,
        lines: vec![sku(2)],
    });
    check(&InventoryReleased {
        order_id: order,
        lines: vec![sku(2)],
        restocked: false,
    });
    check(&PaymentAuthorized {
        order_id: order,
        payment_id: id(4),
        amount: dec("39.98"),
        currency: usd(),
        gateway_reference: "auth_123".into(),
    });
    check(&PaymentFailed {
        order_id: order,
        payment_id: id(4),
        reason: "card_declined".into(),
    });
    check(&PaymentCaptured {
        order_id: order,
        payment_id: id(4),
        amount: dec("39.98"),
        currency: usd(),
    });
    check(&PaymentCaptureFailed {
        order_id: order,
        payment_id: id(4),
        reason: "gateway_timeout".into(),
        attempts: 5,
    });
    check(&PaymentVoided {
        order_id: order,
        payment_id: id(4),
        amount: dec("39.98"),
        currency: usd(),
    });
    check(&PaymentRefunded {
        order_id: order,
        payment_id: id(4),
        amount: dec("39.98"),
        currency: usd(),
    });
}
