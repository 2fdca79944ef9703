//! Inventory steps driven the way the consumer drives them (inbox row + effects in one
//! transaction), many at once: the stock invariants hold under concurrency. Duplicates go
//! through the real consumer on the broker, since the inbox is what they test.

use std::sync::Arc;
use std::time::Duration;

use catalog::inventory::service::Outcome;
use futures::future::join_all;
use serde_json::Value;
use shared::events::ReservationFailure;
use uuid::Uuid;

use crate::helpers::{
    assert_error, order_cancelled, order_confirmed, order_created, Caller, TestApp,
};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn concurrent_orders_reserve_exactly_the_stock_there_is() {
    let app = Arc::new(TestApp::spawn().await);
    let seller = Caller::seller();
    let (_, sku) = app.listed(&seller, "Limited", "10.00", 5).await;
    let n = 16;
    let outcomes = join_all((0..n).map(|_| {
        let app = app.clone();
        let sku = sku.clone();
        tokio::spawn(async move {
            app.handle(&order_created(Uuid::now_v7(), &[(&sku, 1, "10.00")]))
                .await
                .unwrap()
        })
    }))
    .await;
    let mut reserved = 0;
    let mut failed = 0;
    for o in outcomes {
        match o.unwrap() {
            Outcome::Reserved(_) => reserved += 1,
            Outcome::Failed(ReservationFailure::InsufficientStock, lines) => {
                assert_eq!(lines[0].available, 0);
                failed += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((reserved, failed), (5, n - 5));
    assert_eq!(app.sku_row(&sku).await, (5, 5, 0));
    let audit = app.audit().await;
    assert_eq!(audit["consistent"], true, "{audit}");
}

#[tokio::test]
async fn multi_unit_orders_racing_never_over_reserve() {
    let app = Arc::new(TestApp::spawn().await);
    let seller = Caller::seller();
    let (_, sku) = app.listed(&seller, "Bulk", "1.00", 10).await;
    // 3 units each: at most 3 orders fit (9 of 10), never a negative or over-reserved row.
    let outcomes = join_all((0..8).map(|_| {
        let app = app.clone();
        let sku = sku.clone();
        tokio::spawn(async move {
            app.handle(&order_created(Uuid::now_v7(), &[(&sku, 3, "1.00")]))
                .await
                .unwrap()
        })
    }))
    .await;
    let reserved = outcomes
        .into_iter()
        .filter(|o| matches!(o.as_ref().unwrap(), Outcome::Reserved(_)))
        .count();
    assert_eq!(reserved, 3);
    assert_eq!(app.sku_row(&sku).await, (10, 9, 0));
}

#[tokio::test]
async fn orders_locking_skus_in_opposite_orders_both_complete() {
    let app = Arc::new(TestApp::spawn().await);
    let seller = Caller::seller();
    let (_, a) = app.listed(&seller, "Left", "2.00", 1000).await;
    let (_, b) = app.listed(&seller, "Right", "3.00", 1000).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let app = app.clone();
        let (a, b) = (a.clone(), b.clone());
        tasks.push(tokio::spawn(async move {
            let lines: Vec<(&str, u32, &str)> = if i % 2 == 0 {
                vec![(&a, 1, "2.00"), (&b, 1, "3.00")]
            } else {
                vec![(&b, 1, "3.00"), (&a, 1, "2.00")]
            };
            app.handle(&order_created(Uuid::now_v7(), &lines))
                .await
                .unwrap()
        }));
    }
    for t in join_all(tasks).await {
        assert!(
            matches!(t.unwrap(), Outcome::Reserved(_)),
            "no false failure"
        );
    }
    assert_eq!(app.sku_row(&a).await, (1000, 20, 0));
    assert_eq!(app.sku_row(&b).await, (1000, 20, 0));
    // A deadlock is a transient error the helper would retry into a clean-looking run: there
    // must have been nothing to retry.
    let retried = app.retried();
    assert!(
        retried.is_empty(),
        "{} retries, first: {:?}",
        retried.len(),
        &retried[..retried.len().min(2)]
    );
}

#[tokio::test]
async fn a_reservation_is_all_or_nothing_and_names_every_failing_line() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let (_, ok) = app.listed(&seller, "Fine", "5.00", 10).await;
    let (_, short) = app.listed(&seller, "Short", "5.00", 1).await;
    let (_, repriced) = app.listed(&seller, "Repriced", "5.00", 10).await;
    let (paused_product, paused) = app.listed(&seller, "Paused", "5.00", 10).await;
    app.patch_auth(
        &format!("/api/v1/products/{paused_product}"),
        &seller.token,
        serde_json::json!({"status": "inactive"}),
    )
    .await;
    let unknown = Uuid::now_v7().to_string();
    let order = Uuid::now_v7();
    let outcome = app
        .handle(&order_created(
            order,
            &[
                (&ok, 2, "5.00"),
                (&short, 2, "5.00"),
                (&repriced, 1, "4.00"),
                (&paused, 1, "5.00"),
                (&unknown, 1, "5.00"),
            ],
        ))
        .await
        .unwrap();
    let Outcome::Failed(_, lines) = outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    let reason_of = |sku: &str| {
        lines
            .iter()
            .find(|l| l.sku_id.to_string() == sku)
            .map(|l| l.reason)
    };
    assert_eq!(reason_of(&ok), None);
    assert_eq!(
        reason_of(&short),
        Some(ReservationFailure::InsufficientStock)
    );
    assert_eq!(reason_of(&repriced), Some(ReservationFailure::PriceChanged));
    assert_eq!(
        reason_of(&paused),
        Some(ReservationFailure::ProductInactive)
    );
    assert_eq!(reason_of(&unknown), Some(ReservationFailure::UnknownSku));
    for sku in [&ok, &short, &repriced, &paused] {
        assert_eq!(app.sku_row(sku).await.1, 0, "nothing held for {sku}");
    }
    assert_eq!(
        app.outbox_types(order).await,
        ["InventoryReservationFailed"]
    );
}

#[tokio::test]
async fn confirm_commits_and_cancel_after_confirm_restocks() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let (_, sku) = app.listed(&seller, "Book", "15.00", 10).await;
    let order = Uuid::now_v7();
    app.handle(&order_created(order, &[(&sku, 4, "15.00")]))
        .await;
    assert_eq!(app.sku_row(&sku).await, (10, 4, 0));
    let outcome = app
        .handle(&order_confirmed(order, &[(&sku, 4)]))
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Committed(_)));
    assert_eq!(
        app.sku_row(&sku).await,
        (6, 0, 4),
        "stock and reserved down, sold up"
    );
    assert_eq!(app.audit().await["consistent"], true);

    // A second confirmation (a different event) changes nothing.
    let again = app
        .handle(&order_confirmed(order, &[(&sku, 4)]))
        .await
        .unwrap();
    assert!(matches!(again, Outcome::Nothing(_)));
    assert_eq!(app.sku_row(&sku).await, (6, 0, 4));

    let outcome = app
        .handle(&order_cancelled(order, &[(&sku, 4)], "confirmed"))
        .await
        .unwrap();
    assert!(matches!(
        outcome,
        Outcome::Released {
            restocked: true,
            ..
        }
    ));
    assert_eq!(app.sku_row(&sku).await, (10, 0, 0), "back on the shelf");
    assert_eq!(
        app.outbox_types(order).await,
        [
            "InventoryReserved",
            "InventoryCommitted",
            "InventoryReleased"
        ]
    );
    let audit = app.audit().await;
    assert_eq!(audit["consistent"], true, "{audit}");
}

#[tokio::test]
async fn cancel_releases_a_held_reservation_once() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let (_, sku) = app.listed(&seller, "Plant", "8.00", 3).await;
    let order = Uuid::now_v7();
    app.handle(&order_created(order, &[(&sku, 3, "8.00")]))
        .await;
    assert_eq!(app.sku_row(&sku).await, (3, 3, 0));
    let outcome = app
        .handle(&order_cancelled(order, &[(&sku, 3)], "awaiting_payment"))
        .await
        .unwrap();
    assert!(matches!(
        outcome,
        Outcome::Released {
            restocked: false,
            ..
        }
    ));
    assert_eq!(app.sku_row(&sku).await, (3, 0, 0));
    let twice = app
        .handle(&order_cancelled(order, &[(&sku, 3)], "awaiting_payment"))
        .await
        .unwrap();
    assert!(matches!(twice, Outcome::Nothing(_)));
    // A confirmation arriving after the release holds nothing and sells nothing.
    let late = app
        .handle(&order_confirmed(order, &[(&sku, 3)]))
        .await
        .unwrap();
    assert!(matches!(late, Outcome::Nothing(_)));
    assert_eq!(app.sku_row(&sku).await, (3, 0, 0));
}

/// Through the real consumer: a redelivered envelope is dropped by the inbox of the service's
/// consumer group (never reaching the handler), the same order under a new event id reserves
/// nothing more, and confirm/cancel for an order never reserved do nothing.
#[tokio::test]
async fn duplicates_and_unknown_orders_change_nothing() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let (_, sku) = app.listed(&seller, "Soap", "3.00", 5).await;
    let group = app.consumer_group();
    let duplicates = [("group", group.as_str()), ("outcome", "duplicate")];
    let nothing = [("outcome", "nothing")];
    let duplicates_before = app.metric("events_consumed_total", &duplicates).await;
    let nothing_before = app.metric("inventory_steps_total", &nothing).await;

    let order = Uuid::now_v7();
    let created = order_created(order, &[(&sku, 2, "3.00")]);
    let again = order_created(order, &[(&sku, 2, "3.00")]);
    // One key, so one partition, consumed in this order: once `again` is handled, the
    // redelivery before it has been too.
    for env in [&created, &created, &again] {
        app.publish_order_event(env).await;
    }
    let stranger = Uuid::now_v7();
    let confirm = order_confirmed(stranger, &[(&sku, 1)]);
    let cancel = order_cancelled(stranger, &[(&sku, 1)], "pending");
    for env in [&confirm, &cancel] {
        app.publish_order_event(env).await;
    }
    app.wait_handled(again.event_id, WAIT).await;
    app.wait_handled(cancel.event_id, WAIT).await;

    let inbox: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM inbox WHERE event_id = $1 AND consumer_group = $2",
    )
    .bind(created.event_id)
    .bind(&group)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(inbox, 1, "one inbox row for the twice-delivered event");
    assert_eq!(
        app.metric("events_consumed_total", &duplicates).await - duplicates_before,
        1.0,
        "the inbox dropped the redelivery before the handler saw it"
    );
    assert_eq!(
        app.metric("inventory_steps_total", &nothing).await - nothing_before,
        3.0,
        "the handler found nothing to do for the new event id and the two unknown-order events"
    );
    assert_eq!(app.sku_row(&sku).await, (5, 2, 0), "reserved once");
    assert_eq!(app.outbox_types(order).await, ["InventoryReserved"]);
    assert!(app.outbox_types(stranger).await.is_empty());
}

#[tokio::test]
async fn the_database_refuses_over_reservation_whatever_the_code_does() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let (_, sku) = app.listed(&seller, "Guarded", "1.00", 2).await;
    let over = sqlx::query("UPDATE skus SET reserved_quantity = 3 WHERE id = $1::uuid")
        .bind(&sku)
        .execute(&app.state.db)
        .await
        .unwrap_err();
    assert!(
        shared::db::is_check_violation(&over, "skus_reserved_within_stock"),
        "{over}"
    );
    let negative = sqlx::query("UPDATE skus SET stock_quantity = -1 WHERE id = $1::uuid")
        .bind(&sku)
        .execute(&app.state.db)
        .await
        .unwrap_err();
    assert!(
        shared::db::is_check_violation(&negative, "skus_stock_nonnegative")
            || shared::db::is_check_violation(&negative, "skus_reserved_within_stock")
    );
    for rewrite in [
        "DELETE FROM stock_movements WHERE sku_id = $1::uuid",
        "UPDATE stock_movements SET delta = delta + 1 WHERE sku_id = $1::uuid",
    ] {
        let err = sqlx::query(rewrite)
            .bind(&sku)
            .execute(&app.state.db)
            .await
            .unwrap_err();
        let db = err.as_database_error().expect("a database error");
        // The trigger's RAISE EXCEPTION: SQLSTATE P0001 with its message.
        assert_eq!(db.code().as_deref(), Some("P0001"), "{rewrite}: {db}");
        assert_eq!(
            db.message(),
            "stock_movements rows are append-only",
            "{rewrite}"
        );
    }
}

#[tokio::test]
async fn the_audit_catches_stock_changed_behind_its_back() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let (_, sku) = app.listed(&seller, "Audited", "1.00", 5).await;
    let order = Uuid::now_v7();
    app.handle(&order_created(order, &[(&sku, 2, "1.00")]))
        .await;
    app.handle(&order_confirmed(order, &[(&sku, 2)])).await;
    let audit = app.audit().await;
    assert_eq!(audit["consistent"], true, "{audit}");
    let one: Value = app
        .get_auth(&format!("/api/v1/inventory/audit?sku_id={sku}"), &app.admin)
        .await
        .json()
        .await
        .unwrap();
    let row = &one["items"][0];
    assert_eq!(row["initial_stock"], 5);
    assert_eq!(row["available"], 3);
    assert_eq!(row["sold"], 2);

    sqlx::query("UPDATE skus SET stock_quantity = stock_quantity + 1 WHERE id = $1::uuid")
        .bind(&sku)
        .execute(&app.state.db)
        .await
        .unwrap();
    let audit = app.audit().await;
    assert_eq!(audit["consistent"], false);
    assert_eq!(audit["items"][0]["sku_id"], sku);
    let resp = app
        .get_auth("/api/v1/inventory/audit", &Caller::seller().token)
        .await;
    assert_eq!(resp.status(), reqwest::StatusCode::FORBIDDEN);
    let reservations: Value = app
        .get_auth(
            &format!("/api/v1/inventory/reservations/{order}"),
            &app.admin,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reservations["items"][0]["status"], "committed");
}

/// Six stock adjustments of -4 race twelve 2-unit reservations on 40 units. Either kind alone
/// fits (24 units), both together (48) do not, so some lose; and whichever kind comes second
/// still finds at least 16 units free, so at least one of each applies in every interleaving.
/// Free units only ever go down here, so a refusal means the final free count is below what the
/// loser asked for.
#[tokio::test]
async fn stock_adjustments_racing_reservations_keep_every_invariant() {
    enum Done {
        Adjusted,
        AdjustmentRefused,
        Reserved(u32),
        ReservationRefused,
    }
    let app = Arc::new(TestApp::spawn().await);
    let seller = Caller::seller();
    let (_, sku) = app.listed(&seller, "Contended", "2.00", 40).await;
    let mut tasks = Vec::new();
    for i in 0..18 {
        let (app, sku, seller) = (app.clone(), sku.clone(), seller.clone());
        tasks.push(tokio::spawn(async move {
            if i % 3 == 0 {
                let resp = app
                    .post_auth(
                        &format!("/api/v1/skus/{sku}/stock"),
                        &seller.token,
                        serde_json::json!({"delta": -4}),
                    )
                    .await;
                if resp.status() == reqwest::StatusCode::OK {
                    return Done::Adjusted;
                }
                assert_error(resp, reqwest::StatusCode::CONFLICT, "STOCK_BELOW_RESERVED").await;
                Done::AdjustmentRefused
            } else {
                match app
                    .handle(&order_created(Uuid::now_v7(), &[(&sku, 2, "2.00")]))
                    .await
                {
                    Some(Outcome::Reserved(lines)) => Done::Reserved(lines[0].quantity),
                    Some(Outcome::Failed(ReservationFailure::InsufficientStock, lines)) => {
                        assert!(lines[0].available < 2, "refused with {lines:?}");
                        Done::ReservationRefused
                    }
                    other => panic!("a reservation either holds or is refused: {other:?}"),
                }
            }
        }));
    }
    let (mut adjusted, mut adjustments_refused) = (0, 0);
    let (mut reserved_units, mut reservations, mut reservations_refused) = (0, 0, 0);
    for t in join_all(tasks).await {
        match t.unwrap() {
            Done::Adjusted => adjusted += 1,
            Done::AdjustmentRefused => adjustments_refused += 1,
            Done::Reserved(q) => {
                reservations += 1;
                reserved_units += q as i32;
            }
            Done::ReservationRefused => reservations_refused += 1,
        }
    }
    assert!(
        adjusted >= 1 && reservations >= 1,
        "{adjusted} adjustments and {reservations} reservations applied"
    );
    assert_eq!(adjusted + adjustments_refused, 6);
    assert_eq!(reservations + reservations_refused, 12);
    let (stock, reserved, sold) = app.sku_row(&sku).await;
    assert_eq!(
        stock,
        40 - 4 * adjusted,
        "stock went down by the applied adjustments"
    );
    assert_eq!(
        reserved, reserved_units,
        "the counter equals the holds granted"
    );
    assert_eq!(reserved, 2 * reservations);
    assert_eq!(sold, 0);
    let free = stock - reserved;
    if adjustments_refused > 0 {
        assert!(free < 4, "an adjustment was refused with {free} units free");
    }
    if reservations_refused > 0 {
        assert!(free < 2, "a reservation was refused with {free} units free");
    }
    let audit = app.audit().await;
    assert_eq!(audit["consistent"], true, "{audit}");
}

/// Rounds of an archive and a reservation of the same product, started together while another
/// transaction holds the SKU row (so a reservation that got past the product has to wait there,
/// the window where an archive used to slip by). The round's order is read from what happened
/// while the SKU was held: either the archive finished (it went first: the reservation must be
/// refused as `ProductInactive`) or both were waiting on a lock (the reservation has the product:
/// it holds, and the archive follows it).
#[tokio::test]
async fn a_reservation_racing_an_archive_holds_only_if_it_locked_the_product_first() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let (mut reserved_first, mut archived_first) = (0, 0);
    for round in 0..8 {
        let (product, sku) = app
            .listed(&seller, &format!("Racing lamp {round}"), "5.00", 10)
            .await;
        let mut blocker = app.state.db.begin().await.unwrap();
        sqlx::query("SELECT id FROM skus WHERE id = $1::uuid FOR UPDATE")
            .bind(&sku)
            .execute(&mut *blocker)
            .await
            .unwrap();
        let blocker_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut *blocker)
            .await
            .unwrap();
        let archive_done = std::sync::atomic::AtomicBool::new(false);
        let created = order_created(Uuid::now_v7(), &[(&sku, 1, "5.00")]);
        let reserve = app.handle(&created);
        let archive = async {
            let resp = app
                .patch_auth(
                    &format!("/api/v1/products/{product}"),
                    &seller.token,
                    serde_json::json!({"status": "archived"}),
                )
                .await;
            archive_done.store(true, std::sync::atomic::Ordering::SeqCst);
            resp.status()
        };
        let referee = async {
            let deadline = tokio::time::Instant::now() + WAIT;
            let archive_went_first = loop {
                if archive_done.load(std::sync::atomic::Ordering::SeqCst) {
                    break true;
                }
                let waiting: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND wait_event_type = 'Lock'
                       AND pid <> $1",
                )
                .bind(blocker_pid)
                .fetch_one(&app.state.db)
                .await
                .unwrap();
                if waiting >= 2 && !archive_done.load(std::sync::atomic::Ordering::SeqCst) {
                    break false;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "round {round}: neither finished nor waiting"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            blocker.commit().await.unwrap();
            archive_went_first
        };
        let (outcome, archive_status, archive_went_first) = tokio::join!(reserve, archive, referee);
        assert_eq!(archive_status, reqwest::StatusCode::OK, "round {round}");
        let (_, reserved, _) = app.sku_row(&sku).await;
        if archive_went_first {
            archived_first += 1;
            assert!(
                matches!(
                    outcome,
                    Some(Outcome::Failed(ReservationFailure::ProductInactive, _))
                ),
                "round {round}: the product was archived before the reservation locked it, \
                 yet the reservation got {outcome:?}"
            );
            assert_eq!(reserved, 0, "round {round}: no hold on an archived product");
        } else {
            reserved_first += 1;
            assert!(
                matches!(outcome, Some(Outcome::Reserved(_))),
                "round {round}: the reservation locked the product first: {outcome:?}"
            );
            assert_eq!(
                reserved, 1,
                "round {round}: the hold made before the archive"
            );
        }
    }
    assert_eq!(reserved_first + archived_first, 8);
    assert!(app.retried().is_empty(), "retried: {:?}", app.retried());
    let audit = app.audit().await;
    assert_eq!(audit["consistent"], true, "{audit}");
}

#[tokio::test]
async fn a_repeated_order_created_after_a_failed_reservation_holds_nothing() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let (_, sku) = app.listed(&seller, "Scarce", "3.00", 2).await;
    let order = Uuid::now_v7();
    let first = app
        .handle(&order_created(order, &[(&sku, 5, "3.00")]))
        .await;
    assert!(
        matches!(
            first,
            Some(Outcome::Failed(ReservationFailure::InsufficientStock, _))
        ),
        "{first:?}"
    );
    // Stock arrives; the same order is announced again under a new event id.
    let resp = app
        .post_auth(
            &format!("/api/v1/skus/{sku}/stock"),
            &seller.token,
            serde_json::json!({"set": 10}),
        )
        .await;
    assert_eq!(resp.status(), reqwest::StatusCode::OK);
    let again = app
        .handle(&order_created(order, &[(&sku, 5, "3.00")]))
        .await;
    assert_eq!(
        again,
        Some(Outcome::Nothing("the reservation failed before"))
    );
    assert_eq!(
        app.sku_row(&sku).await,
        (10, 0, 0),
        "no hold for a failed order"
    );
    assert_eq!(
        app.outbox_types(order).await,
        ["InventoryReservationFailed"]
    );
    let audit = app.audit().await;
    assert_eq!(audit["consistent"], true, "{audit}");
}

#[tokio::test]
async fn a_cancel_with_nothing_held_is_recorded_so_a_later_order_created_holds_nothing() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let (_, sku) = app.listed(&seller, "Late", "3.00", 10).await;
    let order = Uuid::now_v7();
    let cancel = app
        .handle(&order_cancelled(order, &[(&sku, 2)], "pending"))
        .await;
    assert_eq!(
        cancel,
        Some(Outcome::Nothing("no reservation for this order"))
    );
    let state: String =
        sqlx::query_scalar("SELECT state FROM inventory_orders WHERE order_id = $1")
            .bind(order)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(state, "released", "the cancel is recorded");
    let late = app
        .handle(&order_created(order, &[(&sku, 2, "3.00")]))
        .await;
    assert_eq!(late, Some(Outcome::Nothing("the order was cancelled")));
    assert_eq!(app.sku_row(&sku).await, (10, 0, 0));
    assert!(
        app.outbox_types(order).await.is_empty(),
        "nothing announced"
    );
    // And a cancelled hold stays cancelled when its OrderCreated comes again.
    let other = Uuid::now_v7();
    app.handle(&order_created(other, &[(&sku, 4, "3.00")]))
        .await;
    app.handle(&order_cancelled(other, &[(&sku, 4)], "pending"))
        .await;
    let repeated = app
        .handle(&order_created(other, &[(&sku, 4, "3.00")]))
        .await;
    assert_eq!(repeated, Some(Outcome::Nothing("the order was cancelled")));
    assert_eq!(app.sku_row(&sku).await, (10, 0, 0));
    let audit = app.audit().await;
    assert_eq!(audit["consistent"], true, "{audit}");
}

#[tokio::test]
async fn the_audit_flags_stock_held_for_an_order_that_is_over() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let (_, sku) = app.listed(&seller, "Stray", "3.00", 10).await;
    let order = Uuid::now_v7();
    app.handle(&order_created(order, &[(&sku, 2, "3.00")]))
        .await;
    assert_eq!(app.audit().await["consistent"], true);
    // Behind the saga's back: the order's record says released, its hold is still there.
    sqlx::query("UPDATE inventory_orders SET state = 'released' WHERE order_id = $1")
        .bind(order)
        .execute(&app.state.db)
        .await
        .unwrap();
    let audit = app.audit().await;
    assert_eq!(audit["consistent"], false, "{audit}");
    assert_eq!(audit["items"][0]["sku_id"], sku.as_str());
    assert_eq!(audit["items"][0]["stray_holds"], 2);
}
