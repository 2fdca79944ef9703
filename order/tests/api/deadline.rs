//! The payment deadline: unpaid orders are cancelled once, by whichever sweeper claims them, and
//! the deadline outlives the process that set it.

use std::time::Duration;

use futures::future::join_all;
use order::deadline::DeadlineSweeper;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn an_unpaid_order_is_cancelled_at_its_deadline_even_after_a_restart() {
    // The first process sets a 2 s deadline and stops before it passes.
    let app = TestApp::spawn_with(|c| {
        c.payment_timeout_secs = 2;
        c.deadline_sweep_interval_ms = 60_000;
    })
    .await;
    let sku = app.product("Vase", &[("8.00", 9)]).await[0];
    let b = buyer();
    let o = app.place(&b, &[(sku, 1)]).await;
    let id = o["id"].as_str().unwrap().to_owned();
    app.publish(&shared::events::InventoryReserved {
        order_id: uuid(&o["id"]),
        lines: vec![],
    })
    .await;
    app.wait_status(&b, &id, "awaiting_payment").await;
    let paid = app.place(&b, &[(sku, 1)]).await;

    // A new process on the same database, sweeping often, cancels it when due.
    let mut config = test_config(
        &app.db_url,
        &format!("r{}", app.topic_prefix),
        &app.catalog.base,
    );
    config.payment_timeout_secs = 2;
    config.deadline_sweep_interval_ms = 100;
    let (_base, _state, second) = start_order(config).await;
    // The other order is paid in time (made confirmed directly): its deadline is gone.
    sqlx::query("UPDATE orders SET status = 'confirmed', deadline_at = NULL WHERE id = $1")
        .bind(uuid(&paid["id"]))
        .execute(app.db())
        .await
        .unwrap();

    let cancelled = app.wait_status(&b, &id, "cancelled").await;
    assert_eq!(cancelled["cancel_reason"], "payment_timeout");
    let last = cancelled["status_history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["trigger"], "deadline");
    let events = app.outbox(&id).await;
    let (ty, payload) = events.last().unwrap();
    assert_eq!(ty, "OrderCancelled");
    assert_eq!(payload["reason"], "payment_timeout");
    assert_eq!(payload["previous_status"], "awaiting_payment");
    let still: Value = app.order(&b.token, paid["id"].as_str().unwrap()).await;
    assert_eq!(still["status"], "confirmed");
    second.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_sweepers_racing_cancel_each_due_order_exactly_once() {
    let app = TestApp::spawn_with(|c| {
        c.payment_timeout_secs = 1;
        // The service's own sweeper stays out of the way; the test runs two of its own.
        c.deadline_sweep_interval_ms = 60_000;
    })
    .await;
    let sku = app.product("Nail", &[("0.10", 500)]).await[0];
    let b = buyer();
    let mut ids = Vec::new();
    for _ in 0..40 {
        ids.push(uuid(&app.place(&b, &[(sku, 1)]).await["id"]));
    }
    shared::test_utils::eventually(
        "every deadline to pass",
        Duration::from_secs(10),
        || async {
            let due: i64 =
                sqlx::query_scalar("SELECT count(*) FROM orders WHERE deadline_at <= now()")
                    .fetch_one(app.db())
                    .await
                    .unwrap();
            (due == 40).then_some(())
        },
    )
    .await;

    let sweepers: Vec<DeadlineSweeper> = (0..2)
        .map(|_| DeadlineSweeper::new(app.db().clone(), 3, Duration::from_millis(10)))
        .collect();
    let per_sweeper = join_all(sweepers.iter().map(|s| async move {
        let mut total = 0;
        loop {
            let n = s.sweep_once().await.unwrap();
            if n == 0 {
                return total;
            }
            total += n;
        }
    }))
    .await;
    assert_eq!(per_sweeper.iter().sum::<usize>(), 40, "{per_sweeper:?}");

    let cancelled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM orders WHERE status = 'cancelled' AND cancel_reason = 'payment_timeout'",
    )
    .fetch_one(app.db())
    .await
    .unwrap();
    assert_eq!(cancelled, 40);
    for id in &ids {
        let (events, history): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM outbox WHERE aggregate_id = $1::text AND event_type = 'OrderCancelled'),
                    (SELECT count(*) FROM order_status_history WHERE order_id = $1 AND trigger = 'deadline')",
        )
        .bind(id)
        .fetch_one(app.db())
        .await
        .unwrap();
        assert_eq!((events, history), (1, 1), "order {id}");
    }
}

#[tokio::test]
async fn an_order_whose_cancel_fails_does_not_hold_back_the_rest_of_its_batch() {
    let app = TestApp::spawn_with(|c| {
        c.payment_timeout_secs = 1;
        c.deadline_sweep_interval_ms = 60_000;
    })
    .await;
    let sku = app.product("Tack", &[("0.20", 50)]).await[0];
    let b = buyer();
    let broken = uuid(&app.place(&b, &[(sku, 1)]).await["id"]);
    let others: Vec<_> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(uuid(&app.place(&b, &[(sku, 1)]).await["id"]));
        }
        v
    };
    // A real failure for one order: the database refuses any change to its row.
    sqlx::raw_sql(&format!(
        "CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'injected failure'; END; $$;
         CREATE TRIGGER refuse_change BEFORE UPDATE ON orders FOR EACH ROW
             WHEN (OLD.id = '{broken}') EXECUTE FUNCTION refuse_change();"
    ))
    .execute(app.db())
    .await
    .unwrap();
    shared::test_utils::eventually(
        "every deadline to pass",
        Duration::from_secs(10),
        || async {
            let due: i64 =
                sqlx::query_scalar("SELECT count(*) FROM orders WHERE deadline_at <= now()")
                    .fetch_one(app.db())
                    .await
                    .unwrap();
            (due == 4).then_some(())
        },
    )
    .await;
    let sweeper = DeadlineSweeper::new(app.db().clone(), 10, Duration::from_millis(10));
    assert_eq!(sweeper.sweep_once().await.unwrap(), 3);
    for id in &others {
        let status: String = sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
            .bind(id)
            .fetch_one(app.db())
            .await
            .unwrap();
        assert_eq!(status, "cancelled");
    }
    let (status, events): (String, i64) = sqlx::query_as(
        "SELECT status, (SELECT count(*) FROM outbox WHERE aggregate_id = $1::text AND event_type = 'OrderCancelled')
         FROM orders WHERE id = $1",
    )
    .bind(broken)
    .fetch_one(app.db())
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), events),
        ("pending", 0),
        "the failing order stays due, unannounced"
    );
}
