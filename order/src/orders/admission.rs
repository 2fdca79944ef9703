//! Admission control for `POST /orders`: past `max_orders_in_flight` unpaid orders (`pending` or
//! `awaiting_payment`: the saga has not finished with them), a new order is refused with
//! `503 ORDERS_BUSY` and `Retry-After`, before anything is asked of the cart or the catalog or
//! written. An overload then sheds the excess at the door instead of queueing it in the outbox and
//! the broker, where (on the local broker) a backlog of thousands of orders stopped everything
//! (docs/benchmarks.md). Retries of an order already placed are answered as before.
//!
//! The count is the unpaid orders' deadline index (`deadline_at` is set exactly while an order is
//! unpaid), read at most once per `refresh`: under load the limit is approximate by what arrives
//! within one refresh.

use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Mutex;
use tokio::time::Instant;

pub struct Admission {
    /// 0: no limit.
    limit: u64,
    refresh: Duration,
    /// When the count was last read, and what it was.
    last: Mutex<Option<(Instant, i64)>>,
}

/// Why an order was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    pub in_flight: i64,
    pub limit: u64,
}

impl Admission {
    pub fn new(limit: u64, refresh: Duration) -> Self {
        Self {
            limit,
            refresh,
            last: Mutex::new(None),
        }
    }

    /// `Err(Busy)` when the unpaid orders have reached the limit.
    pub async fn check(&self, db: &PgPool) -> Result<Result<(), Busy>, sqlx::Error> {
        if self.limit == 0 {
            return Ok(Ok(()));
        }
        let in_flight = self.in_flight(db).await?;
        metrics::gauge!("orders_in_flight").set(in_flight as f64);
        if in_flight >= i64::try_from(self.limit).unwrap_or(i64::MAX) {
            metrics::counter!("orders_refused_busy_total").increment(1);
            return Ok(Err(Busy {
                in_flight,
                limit: self.limit,
            }));
        }
        Ok(Ok(()))
    }

    async fn in_flight(&self, db: &PgPool) -> Result<i64, sqlx::Error> {
        let mut last = self.last.lock().await;
        if let Some((at, n)) = *last {
            if at.elapsed() < self.refresh {
                return Ok(n);
            }
        }
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM orders WHERE deadline_at IS NOT NULL")
                .fetch_one(db)
                .await?;
        *last = Some((Instant::now(), n));
        Ok(n)
    }
}
