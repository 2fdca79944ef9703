//! The gateway worker: makes the gateway calls payments owe, outside any consumer transaction
//! (docs/adr/013). Each call is three steps:
//!
//! 1. **claim** (one statement, committed): the due call is leased to this worker and its attempt
//!    counted before it is made;
//! 2. **call** the gateway with the operation's idempotency key (`authorize:<order>`, ...), with no
//!    transaction open;
//! 3. **record** (one transaction): the attempt row, the status change, the ledger posting, the
//!    event in the outbox, and what the payment owes next.
//!
//! A crash after 1 leaves a lease that runs out, and the call is made again under the same key: the
//! gateway answers as the first time and moves no money twice. A crash after 2 is the same. Step 3
//! is all-or-nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use shared::events::{
    EventMeta, PaymentAuthorized, PaymentCaptureFailed, PaymentCaptured, PaymentFailed,
    PaymentRefunded, PaymentVoided,
};
use shared::money::Currency;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{watch, Notify};

use crate::config::PaymentConfig;
use crate::gateway::{GatewayOutcome, GatewayRequest, Operation, PaymentGateway};
use crate::ledger::{self, Kind};
use crate::payments::{self as repo, Next, Payment, Status};

pub const SOURCE: &str = "payment";

#[derive(Clone)]
pub struct Worker {
    db: PgPool,
    gateway: Arc<dyn PaymentGateway>,
    config: Arc<PaymentConfig>,
    wake: Arc<Notify>,
}

/// What a claimed call came to, before it is recorded.
#[derive(Debug, Clone)]
pub struct Called {
    pub outcome: GatewayOutcome,
    pub latency_ms: i32,
}

impl Worker {
    pub fn new(
        db: PgPool,
        gateway: Arc<dyn PaymentGateway>,
        config: Arc<PaymentConfig>,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            db,
            gateway,
            config,
            wake,
        }
    }

    /// Step 1: lease due calls to this worker.
    pub async fn claim(&self) -> Result<Vec<Payment>, sqlx::Error> {
        repo::claim_due(
            &self.db,
            i64::from(self.config.worker_batch),
            self.config.claim_lease_secs,
        )
        .await
    }

    /// Step 2: make the call (no transaction is open).
    pub async fn call(&self, p: &Payment, op: Operation) -> Called {
        let request = GatewayRequest {
            operation: op,
            idempotency_key: p.idempotency_key(op),
            payment_method: p.payment_method.clone(),
            amount: p.amount,
            currency: p.currency.clone(),
            reference: p.gateway_reference.clone(),
        };
        let started = Instant::now();
        let timeout = Duration::from_millis(self.config.gateway_timeout_ms);
        let outcome = match tokio::time::timeout(timeout, self.gateway.call(&request)).await {
            Ok(outcome) => outcome,
            Err(_) => GatewayOutcome::Retryable {
                error: format!("gateway call timed out after {timeout:?}"),
            },
        };
        let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        metrics::histogram!("payment_gateway_call_seconds", "operation" => op.as_str())
            .record(started.elapsed().as_secs_f64());
        Called {
            outcome,
            latency_ms,
        }
    }

    /// Claim, call and record every due call once; how many calls were handled.
    pub async fn run_once(&self) -> Result<usize, sqlx::Error> {
        let claimed = self.claim().await?;
        let n = claimed.len();
        let results = futures::future::join_all(claimed.into_iter().map(|p| async move {
            let Some(op) = p.operation() else {
                return Ok(());
            };
            // Cancelled before any authorization call was made: there is nothing to hold.
            if op == Operation::Authorize && p.cancel_requested && p.op_attempts == 1 {
                return self.record_cancelled_before_authorization(&p).await;
            }
            let called = self.call(&p, op).await;
            self.record(&p, op, &called).await
        }))
        .await;
        for r in results {
            if let Err(e) = r {
                tracing::warn!(error = %e, "recording a gateway call failed; it will be made again after its lease");
            }
        }
        Ok(n)
    }

    /// Until shutdown: handle due calls, then wait for a wake-up (a new call owed) or the interval.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let interval = Duration::from_millis(self.config.worker_interval_ms);
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.run_once().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "payment worker: claiming failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    fn backoff(&self, attempts: i32) -> Duration {
        let exp = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(0)
            .min(20);
        let full = self
            .config
            .retry_base_ms
            .saturating_mul(1u64 << exp)
            .min(self.config.retry_max_ms);
        // Jitter: between half and all of the delay, so retries of many payments spread out.
        let jittered = full / 2 + fastrand::u64(0..=full / 2);
        Duration::from_millis(jittered.max(1))
    }

    async fn record_cancelled_before_authorization(&self, p: &Payment) -> Result<(), sqlx::Error> {
        let mut tx = self.db.begin().await?;
        let Some(current) = repo::lock(&mut tx, p.id).await? else {
            return Ok(());
        };
        if current.status == Status::Requested
            && repo::transition(
                &mut tx,
                p.id,
                Status::Failed,
                None,
                Some("order_cancelled"),
                Next::Done,
            )
            .await?
        {
            let failed = PaymentFailed {
                order_id: p.order_id,
                payment_id: p.id,
                reason: "order_cancelled".into(),
            };
            shared::outbox::enqueue(&mut tx, SOURCE, &failed, &EventMeta::default()).await?;
        }
        tx.commit().await
    }

    /// Step 3: record the call's outcome and everything that follows from it, at once.
    pub async fn record(
        &self,
        p: &Payment,
        op: Operation,
        called: &Called,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.db.begin().await?;
        let key = p.idempotency_key(op);
        let (outcome, reference, error) = match &called.outcome {
            GatewayOutcome::Succeeded { reference } => {
                ("succeeded", Some(reference.as_str()), None)
            }
            GatewayOutcome::Declined { code } => ("declined", None, Some(code.as_str())),
            GatewayOutcome::Retryable { error } => ("retryable_error", None, Some(error.as_str())),
        };
        repo::record_attempt(
            &mut tx,
            p.id,
            op,
            &key,
            outcome,
            reference,
            error,
            called.latency_ms,
        )
        .await?;
        metrics::counter!("payment_gateway_calls_total", "operation" => op.as_str(), "outcome" => outcome)
            .increment(1);
        let Some(current) = repo::lock(&mut tx, p.id).await? else {
            return tx.commit().await;
        };
        if current.operation() != Some(op) {
            // The payment owes something else now (a cancel replaced a capture that was not in
            // flight when it arrived, or a lease ran out and another worker finished). Keep the
            // attempt; a success here would be money the ledger does not know of.
            if matches!(called.outcome, GatewayOutcome::Succeeded { .. }) {
                tracing::error!(payment_id = %p.id, operation = op.as_str(), "a gateway call succeeded for an operation no longer owed");
                metrics::counter!("payment_stale_outcomes_total").increment(1);
            }
            return tx.commit().await;
        }
        let follow_up = self.apply(&mut tx, &current, op, &called.outcome).await?;
        tx.commit().await?;
        if follow_up {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// The status change, posting, event and next call of one outcome. `true` when a new call is
    /// due at once.
    async fn apply(
        &self,
        tx: &mut PgConnection,
        p: &Payment,
        op: Operation,
        outcome: &GatewayOutcome,
    ) -> Result<bool, sqlx::Error> {
        let currency: Option<Currency> = p.currency.parse().ok();
        let minor = currency.map(|c| c.minor_units()).unwrap_or(2);
        let amount = p.amount.round_dp(minor);
        let meta = EventMeta::default();
        let attempts = u32::try_from(p.op_attempts).unwrap_or(0);
        let then = |cancelled_next: Operation| {
            if p.cancel_requested {
                Next::Start(cancelled_next)
            } else {
                Next::Done
            }
        };
        let Some(currency) = currency else {
            tracing::error!(payment_id = %p.id, currency = %p.currency, "payment in an unknown currency");
            return Ok(false);
        };
        match (op, outcome) {
            (Operation::Authorize, GatewayOutcome::Succeeded { reference }) => {
                let next = then(Operation::Void);
                let follow = matches!(next, Next::Start(_));
                if repo::transition(tx, p.id, Status::Authorized, Some(reference), None, next)
                    .await?
                {
                    ledger::post(
                        tx,
                        Kind::Authorization,
                        p.order_id,
                        p.id,
                        &ledger::authorization(p.amount, &p.currency),
                    )
                    .await?;
                    let e = PaymentAuthorized {
                        order_id: p.order_id,
                        payment_id: p.id,
                        amount,
                        currency,
                        gateway_reference: reference.clone(),
                    };
                    shared::outbox::enqueue(tx, SOURCE, &e, &meta).await?;
                }
                Ok(follow)
            }
            (Operation::Authorize, GatewayOutcome::Declined { code }) => {
                self.fail(tx, p, code).await?;
                Ok(false)
            }
            (Operation::Authorize, GatewayOutcome::Retryable { .. }) => {
                if attempts >= self.config.authorize_max_attempts {
                    self.fail(tx, p, "gateway_unavailable").await?;
                } else {
                    repo::schedule(tx, p.id, Next::RetryIn(self.backoff(p.op_attempts))).await?;
                }
                Ok(false)
            }
            (Operation::Capture, GatewayOutcome::Succeeded { .. }) => {
                let next = then(Operation::Refund);
                let follow = matches!(next, Next::Start(_));
                if repo::transition(tx, p.id, Status::Captured, None, None, next).await? {
                    let sellers: Vec<(uuid::Uuid, Decimal)> = p
                        .seller_amounts
                        .0
                        .iter()
                        .map(|s| (s.seller_id, s.amount))
                        .collect();
                    let entries = ledger::capture(
                        p.amount,
                        &p.currency,
                        minor,
                        &sellers,
                        self.config.commission_rate,
                    );
                    ledger::post(tx, Kind::Capture, p.order_id, p.id, &entries).await?;
                    let e = PaymentCaptured {
                        order_id: p.order_id,
                        payment_id: p.id,
                        amount,
                        currency,
                    };
                    shared::outbox::enqueue(tx, SOURCE, &e, &meta).await?;
                }
                Ok(follow)
            }
            (Operation::Capture, GatewayOutcome::Declined { code }) => {
                self.capture_failed(tx, p, code, attempts).await?;
                Ok(true)
            }
            (Operation::Capture, GatewayOutcome::Retryable { .. }) => {
                if attempts >= self.config.capture_max_attempts {
                    self.capture_failed(tx, p, "gateway_unavailable", attempts)
                        .await?;
                    Ok(true)
                } else {
                    repo::schedule(tx, p.id, Next::RetryIn(self.backoff(p.op_attempts))).await?;
                    Ok(false)
                }
            }
            (Operation::Void, GatewayOutcome::Succeeded { .. }) => {
                if repo::transition(tx, p.id, Status::Voided, None, None, Next::Done).await? {
                    ledger::post(
                        tx,
                        Kind::Void,
                        p.order_id,
                        p.id,
                        &ledger::void(p.amount, &p.currency),
                    )
                    .await?;
                    let e = PaymentVoided {
                        order_id: p.order_id,
                        payment_id: p.id,
                        amount,
                        currency,
                    };
                    shared::outbox::enqueue(tx, SOURCE, &e, &meta).await?;
                }
                Ok(false)
            }
            (Operation::Refund, GatewayOutcome::Succeeded { .. }) => {
                if repo::transition(tx, p.id, Status::Refunded, None, None, Next::Done).await? {
                    let captured = ledger::entries_of(tx, p.id, Kind::Capture).await?;
                    ledger::post(
                        tx,
                        Kind::Refund,
                        p.order_id,
                        p.id,
                        &ledger::refund(&captured, &p.currency),
                    )
                    .await?;
                    let e = PaymentRefunded {
                        order_id: p.order_id,
                        payment_id: p.id,
                        amount,
                        currency,
                    };
                    shared::outbox::enqueue(tx, SOURCE, &e, &meta).await?;
                }
                Ok(false)
            }
            // Money owed back is never given up on: a void or refund is retried, later and later.
            (Operation::Void | Operation::Refund, other) => {
                tracing::warn!(payment_id = %p.id, operation = op.as_str(), outcome = ?other, "giving money back failed; retrying");
                metrics::counter!("payment_release_retries_total", "operation" => op.as_str())
                    .increment(1);
                repo::schedule(tx, p.id, Next::RetryIn(self.backoff(p.op_attempts))).await?;
                Ok(false)
            }
        }
    }

    async fn fail(
        &self,
        tx: &mut PgConnection,
        p: &Payment,
        reason: &str,
    ) -> Result<(), sqlx::Error> {
        if repo::transition(tx, p.id, Status::Failed, None, Some(reason), Next::Done).await? {
            let e = PaymentFailed {
                order_id: p.order_id,
                payment_id: p.id,
                reason: reason.to_owned(),
            };
            shared::outbox::enqueue(tx, SOURCE, &e, &EventMeta::default()).await?;
        }
        Ok(())
    }

    /// The capture will not happen: the hold is voided next, and the order is told.
    async fn capture_failed(
        &self,
        tx: &mut PgConnection,
        p: &Payment,
        reason: &str,
        attempts: u32,
    ) -> Result<(), sqlx::Error> {
        if repo::transition(
            tx,
            p.id,
            Status::CaptureFailed,
            None,
            Some(reason),
            Next::Start(Operation::Void),
        )
        .await?
        {
            let e = PaymentCaptureFailed {
                order_id: p.order_id,
                payment_id: p.id,
                reason: reason.to_owned(),
                attempts,
            };
            shared::outbox::enqueue(tx, SOURCE, &e, &EventMeta::default()).await?;
        }
        Ok(())
    }
}
