//! The payment deadline (contract §6): an order still unpaid (`pending`, `awaiting_payment`)
//! at its `deadline_at` is cancelled with reason `payment_timeout`. The deadline is a column, not a
//! timer in memory, so it survives restarts; a sweep claims due orders with `FOR UPDATE SKIP
//! LOCKED` in batches, and the cancel itself is the same conditional transition as every other, so
//! two replicas sweeping at once never cancel one order twice, and a payment that lands during the
//! sweep either wins (the order is confirmed) or is recorded as ignored.

use std::time::Duration;

use shared::events::{CancelReason, EventMeta};
use sqlx::PgPool;
use tokio::sync::watch;

use crate::orders::domain::Status;
use crate::orders::repository::{self as repo, Applied};
use crate::orders::service::{cancel_in, Cancel};

#[derive(Clone)]
pub struct DeadlineSweeper {
    db: PgPool,
    batch: i64,
    interval: Duration,
}

impl DeadlineSweeper {
    pub fn new(db: PgPool, batch: u32, interval: Duration) -> Self {
        Self {
            db,
            batch: i64::from(batch),
            interval,
        }
    }

    /// One batch: claim up to `batch` due orders and cancel them, in one transaction (a savepoint
    /// per order). Returns how many this call cancelled.
    pub async fn sweep_once(&self) -> Result<usize, sqlx::Error> {
        let mut tx = self.db.begin().await?;
        let due = repo::claim_due(&mut tx, self.batch).await?;
        let mut cancelled = 0;
        for id in &due {
            // One savepoint per order: an order whose cancel fails is left due (and logged)
            // instead of rolling back the whole batch on every sweep.
            let mut one = sqlx::Connection::begin(&mut *tx).await?;
            let applied = cancel_in(
                &mut one,
                *id,
                Cancel {
                    from: &Status::UNPAID,
                    trigger: "deadline",
                    reason: CancelReason::PaymentTimeout,
                    payment_status: None,
                    note: None,
                    details: None,
                },
                &EventMeta::default(),
            )
            .await;
            match applied {
                Ok(applied) => {
                    one.commit().await?;
                    if matches!(applied, Applied::Done { .. }) {
                        cancelled += 1;
                    }
                }
                Err(e) => {
                    one.rollback().await?;
                    tracing::error!(order_id = %id, error = %e, "cancelling an unpaid order at its deadline failed; it stays due");
                    metrics::counter!("order_deadline_failures_total").increment(1);
                }
            }
        }
        tx.commit().await?;
        if cancelled > 0 {
            metrics::counter!("order_payment_timeouts_total").increment(cancelled as u64);
            tracing::info!(cancelled, "unpaid orders cancelled at their deadline");
        }
        Ok(cancelled)
    }

    /// Sweep until nothing is due, then wait `interval`; until shutdown.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            loop {
                if *shutdown.borrow() {
                    return;
                }
                match self.sweep_once().await {
                    Ok(n) if n as i64 >= self.batch => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "deadline sweep failed; retrying later");
                        break;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
