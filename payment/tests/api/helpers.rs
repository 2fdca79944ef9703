//! `TestApp`: a payment service (own database) on `127.0.0.1:0` on the test broker, fast retry
//! settings, and two ways to drive it: publish order events on its topic and wait (the consumer
//! and the worker of the running service do the work), or — with the service's own worker idle —
//! hand events to the handler and run a worker step by step, to place a cancel or a crash exactly
//! between two steps.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use payment::gateway::{MockGateway, Operation};
use payment::saga::PaymentHandler;
use payment::worker::Worker;
use payment::{Application, PaymentConfig};
use rust_decimal::Decimal;
use serde_json::Value;
use shared::auth::Role;
use shared::config::{Profile, Secret};
use shared::events::*;
use shared::server::ShutdownHandle;
use shared::test_utils::{self, brokers, TestDb};
use sqlx::PgPool;
use tokio::sync::Notify;
use uuid::Uuid;

pub struct User {
    pub id: Uuid,
    pub token: String,
}

pub fn user(role: Role) -> User {
    let id = Uuid::now_v7();
    User {
        id,
        token: test_utils::mint_token(id, role),
    }
}

pub struct TestApp {
    pub http: test_utils::Http,
    pub state: payment::AppState,
    pub config: PaymentConfig,
    pub topic_prefix: String,
    shutdown: ShutdownHandle,
    _db: TestDb,
}

impl std::ops::Deref for TestApp {
    type Target = test_utils::Http;
    fn deref(&self) -> &test_utils::Http {
        &self.http
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.shutdown();
    }
}

pub async fn test_db() -> TestDb {
    static M: OnceLock<sqlx::migrate::Migrator> = OnceLock::new();
    let m = M.get_or_init(|| shared::db::service_migrator(&payment::MIGRATOR).unwrap());
    TestDb::create("payment", m)
        .await
        .expect("payment database")
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// The service runs no worker: the test runs its own (`worker()`) step by step.
    pub async fn manual() -> Self {
        Self::spawn_with(|c| c.worker_enabled = false).await
    }

    pub async fn spawn_with(customise: impl FnOnce(&mut PaymentConfig)) -> Self {
        test_utils::init_logs();
        let topic_prefix = format!("t{}.", Uuid::now_v7().simple());
        let db = test_db().await;
        let mut config = PaymentConfig::defaults(Profile::Test);
        config.common.port = 0;
        config.common.database_url = Secret::new(db.url.clone());
        config.common.database_max_connections = 10;
        config.common.shutdown_grace_secs = 1;
        config.common.jwt_public_key_path = Some(test_utils::public_key_file().to_owned());
        config.common.kafka_brokers = brokers();
        config.common.kafka_topic_partitions = 2;
        config.common.kafka_topic_prefix = topic_prefix.clone();
        config.retry_base_ms = 10;
        config.retry_max_ms = 40;
        config.worker_interval_ms = 50;
        config.gateway_timeout_ms = 1000;
        config.claim_lease_secs = 2;
        customise(&mut config);
        let app = Application::build(config.clone())
            .await
            .expect("payment starts");
        let base = format!("http://{}", app.addr());
        let state = app.state.clone();
        let shutdown = app.shutdown_handle();
        tokio::spawn(app.run_until_stopped());
        Self {
            http: test_utils::Http::new(base),
            state,
            config,
            topic_prefix,
            shutdown,
            _db: db,
        }
    }

    pub fn db(&self) -> &PgPool {
        &self.state.db
    }

    /// A worker of the test's own on the service's database and mock gateway state.
    pub fn worker(&self) -> Worker {
        let gateway = Arc::new(MockGateway::new(
            self.db().clone(),
            self.config.mock_timeout_failures,
            Duration::ZERO,
            0.0,
        ));
        Worker::new(
            self.db().clone(),
            gateway,
            Arc::new(self.config.clone()),
            Arc::new(Notify::new()),
        )
    }

    /// Hand `event` to the payment handler in one transaction, as the consumer does.
    pub async fn handle<E: Event>(&self, event: &E) {
        let env = Envelope::new("order", event, &EventMeta::default()).unwrap();
        let handler = PaymentHandler {
            wake: Arc::new(Notify::new()),
        };
        let mut tx = self.db().begin().await.unwrap();
        handler.apply(&mut tx, &env).await.unwrap();
        tx.commit().await.unwrap();
    }

    /// Run the test's worker until nothing is due now.
    pub async fn drain(&self, worker: &Worker) {
        while worker.run_once().await.unwrap() > 0 {}
    }

    pub async fn publish<E: Event>(&self, event: &E) {
        let env = Envelope::new("order", event, &EventMeta::default()).unwrap();
        let topic = format!("{}{}", self.topic_prefix, topics::ORDERS);
        test_utils::publish(&brokers(), &topic, &env).await;
    }

    pub async fn status(&self, order: Uuid) -> Option<String> {
        sqlx::query_scalar("SELECT status FROM payments WHERE order_id = $1")
            .bind(order)
            .fetch_optional(self.db())
            .await
            .unwrap()
    }

    pub async fn wait_status(&self, order: Uuid, status: &str) {
        test_utils::eventually(
            &format!("payment of {order} to be {status}"),
            Duration::from_secs(30),
            || async { (self.status(order).await.as_deref() == Some(status)).then_some(()) },
        )
        .await;
    }

    /// Wait until the payment owes the gateway nothing.
    pub async fn wait_settled(&self, order: Uuid) -> String {
        test_utils::eventually(
            &format!("payment of {order} to settle"),
            Duration::from_secs(30),
            || async {
                let row: Option<(String, Option<String>)> =
                    sqlx::query_as("SELECT status, pending_op FROM payments WHERE order_id = $1")
                        .bind(order)
                        .fetch_optional(self.db())
                        .await
                        .unwrap();
                match row {
                    Some((status, None)) => Some(status),
                    _ => None,
                }
            },
        )
        .await
    }

    /// What payment wrote for `order`, oldest first: (type, payload).
    pub async fn outbox(&self, order: Uuid) -> Vec<(String, Value)> {
        sqlx::query_as(
            "SELECT event_type, envelope->'payload' FROM outbox WHERE aggregate_id = $1 ORDER BY id",
        )
        .bind(order.to_string())
        .fetch_all(self.db())
        .await
        .unwrap()
    }

    pub async fn outbox_types(&self, order: Uuid) -> Vec<String> {
        self.outbox(order)
            .await
            .into_iter()
            .map(|(t, _)| t)
            .collect()
    }

    /// The posting kinds of the order's payment, in order.
    pub async fn postings(&self, order: Uuid) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT kind FROM ledger_transactions WHERE order_id = $1 ORDER BY at, kind",
        )
        .bind(order)
        .fetch_all(self.db())
        .await
        .unwrap()
    }

    /// The order's net (debits − credits) on every account it touched.
    pub async fn nets(&self, order: Uuid) -> Vec<(String, Decimal)> {
        sqlx::query_as(
            "SELECT a.code, sum(CASE WHEN e.direction = 'debit' THEN e.amount ELSE -e.amount END)
             FROM ledger_entries e
             JOIN ledger_transactions t ON t.id = e.transaction_id
             JOIN ledger_accounts a ON a.id = e.account_id
             WHERE t.order_id = $1 GROUP BY a.code ORDER BY a.code",
        )
        .bind(order)
        .fetch_all(self.db())
        .await
        .unwrap()
    }

    pub async fn charges(&self, op: Operation) -> i64 {
        MockGateway::charges(self.db(), op).await.unwrap()
    }

    /// Trial balance balanced and reconciliation empty, as the ledger's own checks say.
    pub async fn assert_books_clean(&self) {
        let trial = payment::ledger::trial_balance(self.db()).await.unwrap();
        assert!(trial.iter().all(|t| t.balanced), "trial balance: {trial:?}");
        let rec = payment::reconcile::run(self.db()).await.unwrap();
        assert!(
            rec.mismatches.is_empty(),
            "reconciliation: {:?}",
            rec.mismatches
        );
    }
}

pub fn usd() -> shared::money::Currency {
    "USD".parse().unwrap()
}

/// A payment request for `order` of `amount` split between `sellers`.
pub fn request(
    order: Uuid,
    buyer: Uuid,
    method: &str,
    sellers: &[(Uuid, Decimal)],
) -> PaymentRequested {
    PaymentRequested {
        order_id: order,
        buyer_id: buyer,
        amount: sellers.iter().map(|s| s.1).sum(),
        currency: usd(),
        payment_method: method.into(),
        seller_amounts: sellers
            .iter()
            .map(|(seller_id, amount)| SellerAmount {
                seller_id: *seller_id,
                amount: *amount,
            })
            .collect(),
    }
}

pub fn confirmed(order: Uuid, buyer: Uuid) -> OrderConfirmed {
    OrderConfirmed {
        order_id: order,
        buyer_id: buyer,
        items: vec![],
    }
}

pub fn cancelled(order: Uuid, buyer: Uuid, previous: &str) -> OrderCancelled {
    OrderCancelled {
        order_id: order,
        buyer_id: buyer,
        reason: CancelReason::BuyerRequested,
        previous_status: previous.into(),
        items: vec![],
    }
}

pub fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

pub use shared::test_utils::assert_error;
