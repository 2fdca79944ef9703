//! A property test of the payment state machine and the ledger together: random sequences of
//! payment requests (each token), confirmations, cancels, worker steps and redelivered events over
//! several orders. After every step the trial balance balances in every currency and the
//! reconciliation is empty; at the end, with every owed call made, each order's net on every
//! account is exactly what its final state implies, and an order that was cancelled holds and
//! keeps nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use payment::gateway::MockGateway;
use payment::saga::PaymentHandler;
use payment::worker::Worker;
use payment::PaymentConfig;
use proptest::prelude::*;
use rust_decimal::Decimal;
use shared::config::Profile;
use shared::events::{Envelope, Event, EventMeta};
use sqlx::PgPool;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::helpers::*;

#[derive(Debug, Clone)]
enum Step {
    Request {
        order: usize,
        token: usize,
        cents: u32,
    },
    Confirm(usize),
    Cancel(usize),
    Work,
    Redeliver,
}

const TOKENS: [&str; 4] = ["tok_visa", "tok_decline", "tok_timeout", "tok_unknown"];

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (0..4usize, 0..4usize, 1..50_000u32).prop_map(|(order, token, cents)| Step::Request { order, token, cents }),
        2 => (0..4usize).prop_map(Step::Confirm),
        1 => (0..4usize).prop_map(Step::Cancel),
        4 => Just(Step::Work),
        1 => Just(Step::Redeliver),
    ]
}

struct World {
    db: PgPool,
    handler: PaymentHandler,
    worker: Worker,
    orders: Vec<(Uuid, Uuid)>,
    requested: BTreeMap<usize, Decimal>,
    cancelled: Vec<bool>,
    last: Option<Envelope>,
}

impl World {
    async fn deliver<E: Event>(&mut self, event: &E) {
        let env = Envelope::new("order", event, &EventMeta::default()).unwrap();
        self.redeliver_env(&env).await;
        self.last = Some(env);
    }

    async fn redeliver_env(&self, env: &Envelope) {
        let mut tx = self.db.begin().await.unwrap();
        // A request whose seller amounts do not add up is a poison message: never generated here.
        self.handler.apply(&mut tx, env).await.unwrap();
        tx.commit().await.unwrap();
    }

    async fn apply(&mut self, s: &Step) {
        match s {
            // Order never asks for a payment after it cancelled, nor confirms a cancelled order.
            Step::Request { order, .. } | Step::Confirm(order) if self.cancelled[*order] => {}
            Step::Request {
                order,
                token,
                cents,
            } => {
                let (id, buyer) = self.orders[*order];
                let amount = Decimal::new(i64::from(*cents), 2);
                // Two sellers, so captures split and round.
                let first = (amount * Decimal::new(6, 1)).round_dp(2);
                let sellers = [
                    (Uuid::from_u128(1), first),
                    (Uuid::from_u128(2), amount - first),
                ];
                let sellers: Vec<(Uuid, Decimal)> = sellers
                    .into_iter()
                    .filter(|s| s.1 > Decimal::ZERO)
                    .collect();
                let req = request(id, buyer, TOKENS[*token], &sellers);
                self.requested.entry(*order).or_insert(amount);
                self.deliver(&req).await;
            }
            Step::Confirm(order) => {
                let (id, buyer) = self.orders[*order];
                self.deliver(&confirmed(id, buyer)).await;
            }
            Step::Cancel(order) => {
                let (id, buyer) = self.orders[*order];
                self.cancelled[*order] = true;
                self.deliver(&cancelled(id, buyer, "awaiting_payment"))
                    .await;
            }
            Step::Work => {
                self.worker.run_once().await.unwrap();
            }
            Step::Redeliver => {
                if let Some(env) = self.last.clone() {
                    self.redeliver_env(&env).await;
                }
            }
        }
    }

    async fn books_clean(&self) -> Result<(), String> {
        let trial = payment::ledger::trial_balance(&self.db).await.unwrap();
        if !trial.iter().all(|t| t.balanced) {
            return Err(format!("trial balance: {trial:?}"));
        }
        let rec = payment::reconcile::run(&self.db).await.unwrap();
        if !rec.mismatches.is_empty() {
            return Err(format!("reconciliation: {:?}", rec.mismatches));
        }
        Ok(())
    }

    async fn settle(&self) {
        for _ in 0..400 {
            let owed: i64 =
                sqlx::query_scalar("SELECT count(*) FROM payments WHERE pending_op IS NOT NULL")
                    .fetch_one(&self.db)
                    .await
                    .unwrap();
            if owed == 0 {
                return;
            }
            if self.worker.run_once().await.unwrap() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        panic!("calls still owed after 400 rounds");
    }

    async fn check_final(&self) -> Result<(), String> {
        for (i, (order, _)) in self.orders.iter().enumerate() {
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM payments WHERE order_id = $1")
                    .bind(order)
                    .fetch_optional(&self.db)
                    .await
                    .unwrap();
            let nets: BTreeMap<String, Decimal> = sqlx::query_as::<_, (String, Decimal)>(
                "SELECT split_part(a.code, ':', 1),
                        sum(CASE WHEN e.direction = 'debit' THEN e.amount ELSE -e.amount END)
                 FROM ledger_entries e
                 JOIN ledger_transactions t ON t.id = e.transaction_id
                 JOIN ledger_accounts a ON a.id = e.account_id
                 WHERE t.order_id = $1 GROUP BY 1",
            )
            .bind(order)
            .fetch_all(&self.db)
            .await
            .unwrap()
            .into_iter()
            .filter(|(_, n)| !n.is_zero())
            .collect();
            let amount = self.requested.get(&i).copied().unwrap_or_default();
            let want: BTreeMap<String, Decimal> = match status.as_deref() {
                None | Some("requested" | "failed" | "voided" | "refunded") => BTreeMap::new(),
                Some("authorized" | "capture_failed") => [
                    ("gateway_holds".to_owned(), amount),
                    ("buyer_holds".to_owned(), -amount),
                ]
                .into(),
                Some("captured") => {
                    let payable_and_fee: Decimal = nets
                        .iter()
                        .filter(|(k, _)| *k == "seller_payable" || *k == "commission_revenue")
                        .map(|(_, v)| *v)
                        .sum();
                    if payable_and_fee != -amount {
                        return Err(format!(
                            "order {i}: payables and commission {payable_and_fee}, amount {amount}"
                        ));
                    }
                    nets.iter()
                        .filter(|(k, _)| *k == "seller_payable" || *k == "commission_revenue")
                        .map(|(k, v)| (k.clone(), *v))
                        .chain([("gateway_clearing".to_owned(), amount)])
                        .collect()
                }
                Some(other) => return Err(format!("order {i}: unexpected status {other}")),
            };
            if nets != want {
                return Err(format!(
                    "order {i} ({status:?}): nets {nets:?}, expected {want:?}"
                ));
            }
            if self.cancelled[i]
                && !matches!(
                    status.as_deref(),
                    None | Some("failed" | "voided" | "refunded")
                )
            {
                return Err(format!(
                    "order {i} was cancelled but its payment ended {status:?}"
                ));
            }
        }
        Ok(())
    }
}

#[test]
fn random_payment_histories_keep_the_books_balanced_and_end_where_their_orders_do() {
    shared::test_utils::init_logs();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut config = proptest::test_runner::Config::with_cases(64);
    config.failure_persistence = None;
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let result = runner.run(&proptest::collection::vec(step(), 1..60), |steps| {
        rt.block_on(async {
            let db = test_db().await;
            let pool = PgPool::connect(&db.url).await.unwrap();
            let mut cfg = PaymentConfig::defaults(Profile::Test);
            cfg.retry_base_ms = 1;
            cfg.retry_max_ms = 2;
            cfg.mock_timeout_failures = 1;
            cfg.capture_max_attempts = 2;
            let gateway = Arc::new(MockGateway::new(pool.clone(), 1, Duration::ZERO, 0.0));
            let mut w = World {
                db: pool.clone(),
                handler: PaymentHandler {
                    wake: Arc::new(Notify::new()),
                },
                worker: Worker::new(
                    pool.clone(),
                    gateway,
                    Arc::new(cfg),
                    Arc::new(Notify::new()),
                ),
                orders: (0..4).map(|_| (Uuid::now_v7(), Uuid::now_v7())).collect(),
                requested: BTreeMap::new(),
                cancelled: vec![false; 4],
                last: None,
            };
            for (n, s) in steps.iter().enumerate() {
                w.apply(s).await;
                w.books_clean()
                    .await
                    .map_err(|e| TestCaseError::fail(format!("after step {n} {s:?}: {e}")))?;
            }
            w.settle().await;
            w.books_clean().await.map_err(TestCaseError::fail)?;
            w.check_final().await.map_err(TestCaseError::fail)?;
            pool.close().await;
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
