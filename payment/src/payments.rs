//! Payments: one per order, with the state machine of contract §8
//! (`requested → authorized → captured → refunded`, `authorized → voided`, `requested → failed`,
//! `authorized → capture_failed → voided`) and the gateway call each one still owes
//! (`pending_op`, due at `next_attempt_at`). Status changes are conditional updates on the row the
//! caller holds locked.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use shared::events::SellerAmount;
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::gateway::Operation;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Requested,
    Authorized,
    Captured,
    Refunded,
    Voided,
    Failed,
    CaptureFailed,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Requested,
        Status::Authorized,
        Status::Captured,
        Status::Refunded,
        Status::Voided,
        Status::Failed,
        Status::CaptureFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Requested => "requested",
            Status::Authorized => "authorized",
            Status::Captured => "captured",
            Status::Refunded => "refunded",
            Status::Voided => "voided",
            Status::Failed => "failed",
            Status::CaptureFailed => "capture_failed",
        }
    }

    /// The states this one may be reached from.
    pub fn from_states(self) -> &'static [Status] {
        match self {
            Status::Requested => &[],
            Status::Authorized | Status::Failed => &[Status::Requested],
            Status::Captured | Status::CaptureFailed => &[Status::Authorized],
            Status::Voided => &[Status::Authorized, Status::CaptureFailed],
            Status::Refunded => &[Status::Captured],
        }
    }
}

impl TryFrom<String> for Status {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown payment status '{s}'"))
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Payment {
    pub id: Uuid,
    pub order_id: Uuid,
    pub buyer_id: Uuid,
    #[sqlx(try_from = "String")]
    pub status: Status,
    pub amount: Decimal,
    pub currency: String,
    pub payment_method: String,
    pub seller_amounts: Json<Vec<SellerAmount>>,
    pub gateway_reference: Option<String>,
    pub failure_reason: Option<String>,
    pub cancel_requested: bool,
    pub pending_op: Option<String>,
    pub op_attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub claimed_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Payment {
    pub fn operation(&self) -> Option<Operation> {
        self.pending_op.as_deref().and_then(Operation::parse)
    }

    pub fn idempotency_key(&self, op: Operation) -> String {
        format!("{}:{}", op.as_str(), self.order_id)
    }
}

pub const COLUMNS: &str = "id, order_id, buyer_id, status, amount, currency, payment_method, \
     seller_amounts, gateway_reference, failure_reason, cancel_requested, pending_op, op_attempts, \
     next_attempt_at, claimed_until, created_at, updated_at";

pub struct NewPayment<'a> {
    pub order_id: Uuid,
    pub buyer_id: Uuid,
    pub amount: Decimal,
    pub currency: &'a str,
    pub payment_method: &'a str,
    pub seller_amounts: &'a [SellerAmount],
}

/// Record a requested payment with its authorization due now; `false` if the order has one.
pub async fn insert(conn: &mut PgConnection, p: &NewPayment<'_>) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO payments (id, order_id, buyer_id, amount, currency, payment_method,
                               seller_amounts, pending_op, next_attempt_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'authorize', now())
         ON CONFLICT ON CONSTRAINT payments_one_per_order DO NOTHING",
    )
    .bind(shared::id::new_id())
    .bind(p.order_id)
    .bind(p.buyer_id)
    .bind(p.amount)
    .bind(p.currency)
    .bind(p.payment_method)
    .bind(Json(p.seller_amounts))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Remember that the order was cancelled before any payment was requested for it.
pub async fn remember_cancelled(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO cancelled_orders (order_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(order_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn was_cancelled(conn: &mut PgConnection, order_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM cancelled_orders WHERE order_id = $1)")
        .bind(order_id)
        .fetch_one(&mut *conn)
        .await
}

/// Whether a worker holds this payment's call right now, by the database's clock (the one the
/// lease was written with).
pub async fn in_flight(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT COALESCE(claimed_until > now(), false) FROM payments WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await
}

pub async fn by_order(
    db: impl PgExecutor<'_>,
    order_id: Uuid,
) -> Result<Option<Payment>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payments WHERE order_id = $1"
    ))
    .bind(order_id)
    .fetch_optional(db)
    .await
}

pub async fn lock_by_order(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<Option<Payment>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payments WHERE order_id = $1 FOR UPDATE"
    ))
    .bind(order_id)
    .fetch_optional(&mut *conn)
    .await
}

pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<Payment>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payments WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
}

/// What the payment owes the gateway next.
pub enum Next {
    /// Nothing.
    Done,
    /// A new operation, due now.
    Start(Operation),
    /// The same operation again at `delay` from now.
    RetryIn(std::time::Duration),
}

/// Move the payment to `to` (from the states that lead there) and set what it owes next. `false`
/// when the payment is not in such a state.
pub async fn transition(
    conn: &mut PgConnection,
    id: Uuid,
    to: Status,
    reference: Option<&str>,
    failure_reason: Option<&str>,
    next: Next,
) -> Result<bool, sqlx::Error> {
    let from: Vec<&str> = to.from_states().iter().map(|s| s.as_str()).collect();
    let done = sqlx::query(
        "UPDATE payments SET status = $2,
             gateway_reference = COALESCE($3, gateway_reference),
             failure_reason = COALESCE($4, failure_reason),
             updated_at = now()
         WHERE id = $1 AND status = ANY($5)",
    )
    .bind(id)
    .bind(to.as_str())
    .bind(reference)
    .bind(failure_reason)
    .bind(&from)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    schedule(conn, id, next).await?;
    Ok(true)
}

/// Set what the payment owes the gateway next (its status unchanged).
pub async fn schedule(conn: &mut PgConnection, id: Uuid, next: Next) -> Result<(), sqlx::Error> {
    match next {
        Next::Done => sqlx::query(
            "UPDATE payments SET pending_op = NULL, op_attempts = 0, next_attempt_at = NULL,
                 claimed_until = NULL, updated_at = now() WHERE id = $1",
        )
        .bind(id),
        Next::Start(op) => sqlx::query(
            "UPDATE payments SET pending_op = $2, op_attempts = 0, next_attempt_at = now(),
                 claimed_until = NULL, updated_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(op.as_str()),
        Next::RetryIn(delay) => sqlx::query(
            "UPDATE payments SET next_attempt_at = now() + make_interval(secs => $2),
                 claimed_until = NULL, updated_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(delay.as_secs_f64()),
    }
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn mark_cancel_requested(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE payments SET cancel_requested = true, updated_at = now() WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Claim up to `limit` due gateway calls for `lease_secs`, counting the attempt before it is made
/// (so `op_attempts = 1` after a claim means no call was ever made for this operation). Calls
/// another worker holds are skipped; one whose lease ran out (its worker died) is taken over.
pub async fn claim_due(
    db: impl PgExecutor<'_>,
    limit: i64,
    lease_secs: u64,
) -> Result<Vec<Payment>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE payments SET claimed_until = now() + make_interval(secs => $2),
             op_attempts = op_attempts + 1
         WHERE id IN (
             SELECT id FROM payments
             WHERE pending_op IS NOT NULL AND next_attempt_at <= now()
               AND (claimed_until IS NULL OR claimed_until < now())
             ORDER BY next_attempt_at
             LIMIT $1
             FOR UPDATE SKIP LOCKED)
         RETURNING {COLUMNS}"
    ))
    .bind(limit)
    .bind(lease_secs as f64)
    .fetch_all(db)
    .await
}

#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Attempt {
    pub operation: String,
    pub idempotency_key: String,
    pub outcome: String,
    pub gateway_reference: Option<String>,
    pub error: Option<String>,
    pub latency_ms: i32,
    pub at: DateTime<Utc>,
}

#[allow(clippy::too_many_arguments)]
pub async fn record_attempt(
    conn: &mut PgConnection,
    payment_id: Uuid,
    op: Operation,
    key: &str,
    outcome: &str,
    reference: Option<&str>,
    error: Option<&str>,
    latency_ms: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO payment_attempts
             (payment_id, operation, idempotency_key, outcome, gateway_reference, error, latency_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(payment_id)
    .bind(op.as_str())
    .bind(key)
    .bind(outcome)
    .bind(reference)
    .bind(error)
    .bind(latency_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn attempts(
    db: impl PgExecutor<'_>,
    payment_id: Uuid,
) -> Result<Vec<Attempt>, sqlx::Error> {
    sqlx::query_as(
        "SELECT operation, idempotency_key, outcome, gateway_reference, error, latency_ms, at
         FROM payment_attempts WHERE payment_id = $1 ORDER BY id",
    )
    .bind(payment_id)
    .fetch_all(db)
    .await
}
