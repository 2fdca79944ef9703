//! The order side of the saga (contract §7): the consumer of `catalog.events` and
//! `payments.events`. Each event is one transition in the consumer's inbox transaction, with the
//! events it causes written to the outbox in the same transaction. An event that finds the order in
//! a state that no longer accepts it (late, duplicate, reordered across topics) is recorded in the
//! order's history as ignored and is not an error: docs/adr/012 explains why none of them can leave
//! money held.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use shared::consumer::{BoxFuture, EventHandler, HandlerError};
use shared::events::{
    CancelReason, DecodeError, Envelope, Event, EventMeta, InventoryReservationFailed,
    InventoryReserved, OrderConfirmed, PaymentAuthorized, PaymentCaptureFailed, PaymentCaptured,
    PaymentFailed, PaymentRefunded, PaymentRequested, PaymentVoided, SagaEvent, SellerAmount,
    SkuQuantity,
};
use shared::money::Currency;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::orders::domain::{PaymentStatus, Status};
use crate::orders::repository::{self as repo, Applied, OrderRow, Transition};
use crate::orders::service::{cancel_in, Cancel, SOURCE};

/// What handling one event did, for the metric and the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Ignored,
    UnknownOrder,
    NotForOrder,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Ignored => "ignored",
            Outcome::UnknownOrder => "unknown_order",
            Outcome::NotForOrder => "skipped",
        }
    }
}

pub struct SagaHandler;

impl SagaHandler {
    /// Handle one event in `tx` (the consumer's inbox transaction).
    pub async fn apply(
        &self,
        tx: &mut PgConnection,
        env: &Envelope,
    ) -> Result<Outcome, HandlerError> {
        let event = match SagaEvent::from_envelope(env) {
            Ok(e) => e,
            Err(DecodeError::UnknownType(t)) => {
                tracing::debug!(event_type = %t, "not an order event; skipped");
                return Ok(Outcome::NotForOrder);
            }
            Err(e) => return Err(HandlerError::Permanent(e.into())),
        };
        let meta = EventMeta::caused_by(env);
        let ty = env.event_type.as_str();
        let outcome = match &event {
            SagaEvent::InventoryReserved(e) => reserved(tx, e.order_id, ty, &meta).await?,
            SagaEvent::InventoryReservationFailed(e) => {
                let details = serde_json::json!({ "reason": e.reason, "lines": e.lines });
                cancel(
                    tx,
                    e.order_id,
                    ty,
                    &[Status::Pending],
                    CancelReason::InventoryUnavailable,
                    None,
                    Some(details),
                    &meta,
                )
                .await?
            }
            SagaEvent::PaymentAuthorized(e) => authorized(tx, e.order_id, ty, &meta).await?,
            SagaEvent::PaymentFailed(e) => {
                let details = serde_json::json!({ "reason": e.reason });
                cancel(
                    tx,
                    e.order_id,
                    ty,
                    &[Status::AwaitingPayment],
                    CancelReason::PaymentFailed,
                    Some(PaymentStatus::Failed),
                    Some(details),
                    &meta,
                )
                .await?
            }
            SagaEvent::PaymentCaptured(e) => {
                payment_only(tx, e.order_id, ty, PaymentStatus::Captured).await?
            }
            SagaEvent::PaymentCaptureFailed(e) => {
                let details = serde_json::json!({ "reason": e.reason, "attempts": e.attempts });
                cancel(
                    tx,
                    e.order_id,
                    ty,
                    &[Status::Confirmed],
                    CancelReason::CaptureFailed,
                    None,
                    Some(details),
                    &meta,
                )
                .await?
            }
            SagaEvent::PaymentVoided(e) => {
                payment_only(tx, e.order_id, ty, PaymentStatus::Voided).await?
            }
            SagaEvent::PaymentRefunded(e) => {
                payment_only(tx, e.order_id, ty, PaymentStatus::Refunded).await?
            }
            // Catalog's commit and release, and the order service's own events: nothing to do.
            _ => Outcome::NotForOrder,
        };
        if outcome == Outcome::UnknownOrder {
            tracing::warn!(order_id = %env.aggregate_id, event_type = ty, "event for an order this service does not have; ignored");
        }
        metrics::counter!("order_saga_events_total", "event" => env.event_type.clone(), "outcome" => outcome.label())
            .increment(1);
        Ok(outcome)
    }
}

impl EventHandler for SagaHandler {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move { self.apply(tx, event).await.map(|_| ()) })
    }

    fn wants(&self, event_type: &str) -> bool {
        [
            InventoryReserved::TYPE,
            InventoryReservationFailed::TYPE,
            PaymentAuthorized::TYPE,
            PaymentFailed::TYPE,
            PaymentCaptured::TYPE,
            PaymentCaptureFailed::TYPE,
            PaymentVoided::TYPE,
            PaymentRefunded::TYPE,
        ]
        .contains(&event_type)
    }
}

/// Record an event the order's state no longer accepts.
async fn ignored(
    tx: &mut PgConnection,
    order: &OrderRow,
    trigger: &str,
) -> Result<Outcome, sqlx::Error> {
    let why = format!("arrived while the order was {}", order.status.as_str());
    repo::record(
        tx,
        order.id,
        order.status,
        order.payment_status,
        trigger,
        Some(&why),
        false,
        None,
    )
    .await?;
    tracing::info!(order_id = %order.id, trigger, status = order.status.as_str(), "event ignored");
    Ok(Outcome::Ignored)
}

/// The outcome of a transition an event asked for. A refused one is recorded as ignored, after
/// mirroring `payment_status` if the event reports one (so the history row shows it).
async fn refused_or_missing(
    tx: &mut PgConnection,
    applied: Applied,
    trigger: &str,
    payment_status: Option<PaymentStatus>,
) -> Result<Outcome, sqlx::Error> {
    match applied {
        Applied::Done { .. } => Ok(Outcome::Applied),
        Applied::Refused(order) => {
            let order = match payment_status {
                Some(p) => repo::set_payment_status(tx, order.id, p)
                    .await?
                    .unwrap_or(order),
                None => order,
            };
            ignored(tx, &order, trigger).await
        }
        Applied::Missing => Ok(Outcome::UnknownOrder),
    }
}

fn currency(order: &OrderRow) -> Result<Currency, HandlerError> {
    order
        .currency
        .parse()
        .map_err(|e: shared::money::MoneyError| {
            HandlerError::Permanent(anyhow::anyhow!("order {}: {e}", order.id))
        })
}

/// Stock is held: wait for the payment, and ask for it.
async fn reserved(
    tx: &mut PgConnection,
    order_id: Uuid,
    trigger: &str,
    meta: &EventMeta,
) -> Result<Outcome, HandlerError> {
    let applied = repo::transition(
        &mut *tx,
        order_id,
        &Transition {
            trigger,
            from: &[Status::Pending],
            to: Status::AwaitingPayment,
            payment_status: None,
            cancel_reason: None,
            note: None,
            details: None,
        },
    )
    .await?;
    let Applied::Done { order, .. } = applied else {
        return Ok(refused_or_missing(tx, applied, trigger, None).await?);
    };
    let currency = currency(&order)?;
    let items = repo::items(&mut *tx, order_id).await?;
    let mut per_seller: BTreeMap<Uuid, Decimal> = BTreeMap::new();
    for i in &items {
        *per_seller.entry(i.seller_id).or_default() += i.line_total;
    }
    let request = PaymentRequested {
        order_id,
        buyer_id: order.buyer_id,
        amount: shared::money::rounded(order.total_amount, currency),
        currency,
        payment_method: order.payment_method.clone(),
        seller_amounts: per_seller
            .into_iter()
            .map(|(seller_id, amount)| SellerAmount {
                seller_id,
                amount: shared::money::rounded(amount, currency),
            })
            .collect(),
    };
    shared::outbox::enqueue(tx, SOURCE, &request, meta).await?;
    Ok(Outcome::Applied)
}

/// The payment is held: the order is confirmed. For an order cancelled meanwhile the order stays
/// cancelled and only mirrors the authorization; payment voids it when it reads the
/// `OrderCancelled` that follows its `PaymentRequested` on `orders.events` (docs/adr/012).
async fn authorized(
    tx: &mut PgConnection,
    order_id: Uuid,
    trigger: &str,
    meta: &EventMeta,
) -> Result<Outcome, HandlerError> {
    let applied = repo::transition(
        &mut *tx,
        order_id,
        &Transition {
            trigger,
            from: &[Status::AwaitingPayment],
            to: Status::Confirmed,
            payment_status: Some(PaymentStatus::Authorized),
            cancel_reason: None,
            note: None,
            details: None,
        },
    )
    .await?;
    match applied {
        Applied::Done { order, .. } => {
            let items = repo::items(&mut *tx, order_id).await?;
            let confirmed = OrderConfirmed {
                order_id,
                buyer_id: order.buyer_id,
                items: items
                    .iter()
                    .map(|i| SkuQuantity {
                        sku_id: i.sku_id,
                        quantity: i.quantity.max(0) as u32,
                    })
                    .collect(),
            };
            shared::outbox::enqueue(tx, SOURCE, &confirmed, meta).await?;
            Ok(Outcome::Applied)
        }
        refused => {
            Ok(refused_or_missing(tx, refused, trigger, Some(PaymentStatus::Authorized)).await?)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn cancel(
    tx: &mut PgConnection,
    order_id: Uuid,
    trigger: &str,
    from: &[Status],
    reason: CancelReason,
    payment_status: Option<PaymentStatus>,
    details: Option<serde_json::Value>,
    meta: &EventMeta,
) -> Result<Outcome, HandlerError> {
    let applied = cancel_in(
        &mut *tx,
        order_id,
        Cancel {
            from,
            trigger,
            reason,
            payment_status,
            note: None,
            details,
        },
        meta,
    )
    .await?;
    Ok(refused_or_missing(tx, applied, trigger, payment_status).await?)
}

/// A payment status change that does not move the order (captured, voided, refunded).
async fn payment_only(
    tx: &mut PgConnection,
    order_id: Uuid,
    trigger: &str,
    to: PaymentStatus,
) -> Result<Outcome, HandlerError> {
    match repo::set_payment_status(tx, order_id, to).await? {
        Some(order) => {
            repo::record(
                tx,
                order_id,
                order.status,
                order.payment_status,
                trigger,
                None,
                true,
                None,
            )
            .await?;
            Ok(Outcome::Applied)
        }
        None => match repo::lock(&mut *tx, order_id).await? {
            Some(order) => Ok(ignored(tx, &order, trigger).await?),
            None => Ok(Outcome::UnknownOrder),
        },
    }
}
