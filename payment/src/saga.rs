//! The payment side of the saga: the consumer of `orders.events`. Handlers only record what is
//! owed (a payment to authorize, a capture, a void, a refund) in the consumer's inbox transaction;
//! the gateway is called by the worker after that commits (docs/adr/013). `after_commit` wakes the
//! worker so a due call is made at once rather than at its next poll.

use std::sync::Arc;

use rust_decimal::Decimal;
use shared::consumer::{BoxFuture, EventHandler, HandlerError};
use shared::events::{
    DecodeError, Envelope, Event, EventMeta, OrderCancelled, OrderConfirmed, PaymentFailed,
    PaymentRequested, SagaEvent,
};
use sqlx::PgConnection;
use tokio::sync::Notify;

use crate::gateway::Operation;
use crate::payments::{self as repo, NewPayment, Next, Status};
use crate::worker::SOURCE;

/// What handling one event did (the metric's label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Recorded,
    NothingToDo,
    Skipped,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Recorded => "recorded",
            Outcome::NothingToDo => "nothing_to_do",
            Outcome::Skipped => "skipped",
        }
    }
}

pub struct PaymentHandler {
    pub wake: Arc<Notify>,
}

impl PaymentHandler {
    pub async fn apply(
        &self,
        tx: &mut PgConnection,
        env: &Envelope,
    ) -> Result<Outcome, HandlerError> {
        let event = match SagaEvent::from_envelope(env) {
            Ok(e) => e,
            Err(DecodeError::UnknownType(t)) => {
                tracing::debug!(event_type = %t, "not a payment event; skipped");
                return Ok(Outcome::Skipped);
            }
            Err(e) => return Err(HandlerError::Permanent(e.into())),
        };
        let outcome = match &event {
            SagaEvent::PaymentRequested(e) => requested(tx, e).await?,
            SagaEvent::OrderConfirmed(e) => confirmed(tx, e.order_id).await?,
            SagaEvent::OrderCancelled(e) => cancelled(tx, e, env).await?,
            _ => Outcome::Skipped,
        };
        metrics::counter!("payment_saga_events_total", "event" => env.event_type.clone(), "outcome" => outcome.label())
            .increment(1);
        Ok(outcome)
    }
}

impl EventHandler for PaymentHandler {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move { self.apply(tx, event).await.map(|_| ()) })
    }

    fn after_commit<'a>(&'a self, _event: &'a Envelope) -> BoxFuture<'a, ()> {
        Box::pin(async move { self.wake.notify_one() })
    }

    fn wants(&self, event_type: &str) -> bool {
        [
            PaymentRequested::TYPE,
            OrderConfirmed::TYPE,
            OrderCancelled::TYPE,
        ]
        .contains(&event_type)
    }
}

/// A payment is owed: record it, its authorization due now. A request that cannot be paid as asked
/// (no amount, sellers' amounts not adding up to it) is a poison message for the dead letters.
async fn requested(tx: &mut PgConnection, e: &PaymentRequested) -> Result<Outcome, HandlerError> {
    let sellers: Decimal = e.seller_amounts.iter().map(|s| s.amount).sum();
    if e.amount <= Decimal::ZERO || sellers != e.amount {
        return Err(HandlerError::Permanent(anyhow::anyhow!(
            "PaymentRequested for order {}: amount {} and seller amounts summing to {sellers}",
            e.order_id,
            e.amount
        )));
    }
    if repo::was_cancelled(tx, e.order_id).await? {
        // A request that arrives after its order's cancel (a re-driven dead letter): record it as
        // failed without calling the gateway, so nothing is held for a cancelled order.
        let inserted = repo::insert(
            tx,
            &NewPayment {
                order_id: e.order_id,
                buyer_id: e.buyer_id,
                amount: e.amount,
                currency: e.currency.as_str(),
                payment_method: &e.payment_method,
                seller_amounts: &e.seller_amounts,
            },
        )
        .await?;
        if let (true, Some(p)) = (inserted, repo::lock_by_order(tx, e.order_id).await?) {
            repo::transition(
                tx,
                p.id,
                Status::Failed,
                None,
                Some("order_cancelled"),
                Next::Done,
            )
            .await?;
            let failed = PaymentFailed {
                order_id: e.order_id,
                payment_id: p.id,
                reason: "order_cancelled".into(),
            };
            shared::outbox::enqueue(tx, SOURCE, &failed, &EventMeta::default()).await?;
        }
        return Ok(Outcome::NothingToDo);
    }
    let inserted = repo::insert(
        tx,
        &NewPayment {
            order_id: e.order_id,
            buyer_id: e.buyer_id,
            amount: e.amount,
            currency: e.currency.as_str(),
            payment_method: &e.payment_method,
            seller_amounts: &e.seller_amounts,
        },
    )
    .await?;
    Ok(if inserted {
        Outcome::Recorded
    } else {
        tracing::info!(order_id = %e.order_id, "payment already requested; repeat ignored");
        Outcome::NothingToDo
    })
}

/// The order is confirmed: capture what was authorized.
async fn confirmed(tx: &mut PgConnection, order_id: uuid::Uuid) -> Result<Outcome, HandlerError> {
    let Some(p) = repo::lock_by_order(tx, order_id).await? else {
        tracing::warn!(%order_id, "OrderConfirmed for an order without a payment");
        return Ok(Outcome::NothingToDo);
    };
    if p.status == Status::Authorized && p.pending_op.is_none() && !p.cancel_requested {
        repo::schedule(tx, p.id, Next::Start(Operation::Capture)).await?;
        return Ok(Outcome::Recorded);
    }
    tracing::info!(%order_id, status = p.status.as_str(), "OrderConfirmed: nothing to capture");
    Ok(Outcome::NothingToDo)
}

/// The order is cancelled: whatever is held or captured is given back, and a scheduled capture
/// is replaced by a void. A call in flight finishes first; its outcome sees `cancel_requested`.
async fn cancelled(
    tx: &mut PgConnection,
    e: &OrderCancelled,
    env: &Envelope,
) -> Result<Outcome, HandlerError> {
    let Some(p) = repo::lock_by_order(tx, e.order_id).await? else {
        tracing::info!(order_id = %e.order_id, "OrderCancelled: no payment was requested; nothing to do");
        repo::remember_cancelled(tx, e.order_id).await?;
        return Ok(Outcome::NothingToDo);
    };
    if p.cancel_requested {
        return Ok(Outcome::NothingToDo);
    }
    repo::mark_cancel_requested(tx, p.id).await?;
    let in_flight = repo::in_flight(tx, p.id).await?;
    let op = p.operation();
    match p.status {
        Status::Requested if p.op_attempts == 0 && !in_flight => {
            // No call was ever made: nothing can be held.
            repo::transition(
                tx,
                p.id,
                Status::Failed,
                None,
                Some("order_cancelled"),
                Next::Done,
            )
            .await?;
            let failed = PaymentFailed {
                order_id: p.order_id,
                payment_id: p.id,
                reason: "order_cancelled".into(),
            };
            shared::outbox::enqueue(tx, SOURCE, &failed, &EventMeta::caused_by(env)).await?;
        }
        // A capture that was never attempted is replaced by a void. One that was attempted may
        // have gone through with its answer lost: it stays owed, and its retry under the same key
        // ends in a refund (captured) or a void (it fails for good).
        Status::Authorized
            if op.is_none()
                || (op == Some(Operation::Capture) && !in_flight && p.op_attempts == 0) =>
        {
            repo::schedule(tx, p.id, Next::Start(Operation::Void)).await?;
        }
        Status::Captured if op.is_none() => {
            repo::schedule(tx, p.id, Next::Start(Operation::Refund)).await?;
        }
        // Requested with a call made (the authorization's outcome voids), a capture attempted or
        // in flight (its outcome refunds or voids), capture_failed (void owed already), finished.
        _ => {}
    }
    Ok(Outcome::Recorded)
}
