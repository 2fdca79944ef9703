//! The invariant auditor: reads the services' databases and the dead-letter topics and lists every
//! broken promise of contract §7–8 once the system is quiet. Empty means healthy. Used by every
//! e2e test, by `scripts/bench saga` after its runs, and by operators (`make audit`).
//!
//! - every order is settled: `confirmed`/`shipped`/`delivered` with a captured payment, or
//!   `cancelled` with no money held or captured (payment `failed`, `voided`, `refunded`, or none);
//!   nothing `pending` or `awaiting_payment`, and no payment still owing a gateway call;
//! - the order's mirrored payment status equals the payment's own; no order has two payments;
//! - stock is conserved per SKU (catalog's audit: `initial + adjustments = available + reserved +
//!   sold`, no stray holds) and nothing is negative;
//! - the ledger's trial balance is zero per currency and payment's reconciliation is empty;
//! - every outbox is drained, and every dead-letter topic is empty.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use shared::events::topics;
use sqlx::PgPool;
use uuid::Uuid;

/// What the auditor reads: the databases of catalog, order and payment, and the broker holding
/// the dead-letter topics (their names with the stack's topic prefix).
pub struct Target {
    pub catalog_db: PgPool,
    pub order_db: PgPool,
    pub payment_db: PgPool,
    pub brokers: String,
    pub topic_prefix: String,
}

/// Every problem found, one line each.
pub async fn audit(stack: &Target) -> Vec<String> {
    let mut problems = Vec::new();
    orders_and_payments(stack, &mut problems).await;
    stock(&stack.catalog_db, &mut problems).await;
    ledger(&stack.payment_db, &mut problems).await;
    for (name, db) in [
        ("catalog", &stack.catalog_db),
        ("order", &stack.order_db),
        ("payment", &stack.payment_db),
    ] {
        let unpublished: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(db)
                .await
                .unwrap_or(-1);
        if unpublished != 0 {
            problems.push(format!("{name}: {unpublished} outbox rows not published"));
        }
    }
    dead_letters(&stack.brokers, &stack.topic_prefix, &mut problems).await;
    problems
}

/// Audit until it comes back clean or `timeout` passes (events still in flight settle); the last
/// problems found.
pub async fn audit_when_quiet(stack: &Target, timeout: Duration) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let problems = audit(stack).await;
        if problems.is_empty() || tokio::time::Instant::now() >= deadline {
            return problems;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn orders_and_payments(stack: &Target, problems: &mut Vec<String>) {
    let orders: Vec<(Uuid, String, String)> =
        sqlx::query_as("SELECT id, status, payment_status FROM orders ORDER BY id")
            .fetch_all(&stack.order_db)
            .await
            .unwrap_or_default();
    let payments: Vec<(Uuid, String, Option<String>)> =
        sqlx::query_as("SELECT order_id, status, pending_op FROM payments")
            .fetch_all(&stack.payment_db)
            .await
            .unwrap_or_default();
    let mut by_order = std::collections::HashMap::new();
    for (order, status, pending) in &payments {
        if by_order
            .insert(*order, (status.as_str(), pending.as_deref()))
            .is_some()
        {
            problems.push(format!("order {order} has two payments"));
        }
    }
    for (id, status, mirrored) in &orders {
        let payment = by_order.get(id).copied();
        if let Some((p, Some(op))) = payment {
            problems.push(format!("order {id}: payment {p} still owes a {op}"));
        }
        let paid = payment.map(|p| p.0);
        match status.as_str() {
            "confirmed" | "shipped" | "delivered" => {
                if paid != Some("captured") {
                    problems.push(format!(
                        "order {id} is {status} but its payment is {paid:?}"
                    ));
                }
            }
            "cancelled" => {
                if !matches!(paid, None | Some("failed" | "voided" | "refunded")) {
                    problems.push(format!(
                        "order {id} is cancelled but its payment is {paid:?} (money held or kept)"
                    ));
                }
            }
            other => problems.push(format!("order {id} is still {other}")),
        }
        let expected = match paid {
            None | Some("requested") => "none",
            Some("capture_failed") => "authorized",
            Some(p) => p,
        };
        if mirrored != expected {
            problems.push(format!(
                "order {id} shows payment {mirrored}, payment says {paid:?}"
            ));
        }
    }
}

async fn stock(db: &PgPool, problems: &mut Vec<String>) {
    match catalog::inventory::audit::run(db, None).await {
        Ok(report) if report.consistent => {}
        Ok(report) => problems.extend(report.items.iter().map(|s| {
            format!(
                "stock of {} ({}) not conserved: {s:?}",
                s.sku_code, s.sku_id
            )
        })),
        Err(e) => problems.push(format!("catalog audit failed: {e}")),
    }
    let negative: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM skus WHERE stock_quantity < 0 OR reserved_quantity < 0
            OR sold_quantity < 0 OR stock_quantity < reserved_quantity",
    )
    .fetch_one(db)
    .await
    .unwrap_or(-1);
    if negative != 0 {
        problems.push(format!("{negative} SKUs with a negative count"));
    }
}

async fn ledger(db: &PgPool, problems: &mut Vec<String>) {
    match payment::ledger::trial_balance(db).await {
        Ok(rows) => problems.extend(rows.iter().filter(|r| !r.balanced).map(|r| {
            format!(
                "trial balance in {}: debits {} credits {}",
                r.currency, r.debits, r.credits
            )
        })),
        Err(e) => problems.push(format!("trial balance failed: {e}")),
    }
    match payment::reconcile::run(db).await {
        Ok(r) => problems.extend(r.mismatches.iter().map(|m| {
            format!(
                "reconciliation: order {} ({}): {}",
                m.order_id, m.status, m.problem
            )
        })),
        Err(e) => problems.push(format!("reconciliation failed: {e}")),
    }
}

async fn dead_letters(brokers: &str, prefix: &str, problems: &mut Vec<String>) {
    let (brokers, prefix) = (brokers.to_owned(), prefix.to_owned());
    let found = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer =
            match shared::kafka::consumer_config(&brokers, &format!("{prefix}auditor")).create() {
                Ok(c) => c,
                Err(e) => return vec![format!("auditor consumer: {e}")],
            };
        let mut out = Vec::new();
        for topic in topics::ALL {
            let dlq = format!("{prefix}{}", topics::dlq(topic));
            let Ok(meta) = consumer.fetch_metadata(Some(&dlq), Duration::from_secs(5)) else {
                out.push(format!("{dlq}: metadata unavailable"));
                continue;
            };
            for t in meta.topics() {
                for p in t.partitions() {
                    match consumer.fetch_watermarks(&dlq, p.id(), Duration::from_secs(5)) {
                        Ok((low, high)) if high > low => {
                            out.push(format!("{dlq}[{}]: {} dead letters", p.id(), high - low));
                        }
                        Ok(_) => {}
                        Err(e) => out.push(format!("{dlq}[{}]: {e}", p.id())),
                    }
                }
            }
        }
        out
    })
    .await
    .unwrap_or_else(|e| vec![format!("auditor: {e}")]);
    problems.extend(found);
}
