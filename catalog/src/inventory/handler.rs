//! The consumer of `orders.events`: dispatches the three events inventory acts on and ignores the
//! rest of the topic (e.g. `PaymentRequested`, or types added later).

use shared::consumer::{BoxFuture, EventHandler, HandlerError};
use shared::events::{
    DecodeError, Envelope, Event, OrderCancelled, OrderConfirmed, OrderCreated, SagaEvent,
};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::service::{self, Outcome};
use crate::cache::ProductCache;

pub struct InventoryHandler {
    pub db: PgPool,
    pub cache: ProductCache,
}

impl InventoryHandler {
    /// Handle one event in `tx` (the consumer's inbox transaction).
    pub async fn apply(
        &self,
        tx: &mut PgConnection,
        env: &Envelope,
    ) -> Result<Option<Outcome>, HandlerError> {
        let event = match SagaEvent::from_envelope(env) {
            Ok(e) => e,
            Err(DecodeError::UnknownType(t)) => {
                tracing::debug!(event_type = %t, "not an inventory event; skipped");
                return Ok(None);
            }
            Err(e) => return Err(HandlerError::Permanent(e.into())),
        };
        let outcome = match &event {
            SagaEvent::OrderCreated(e) => service::reserve(tx, e, env).await?,
            SagaEvent::OrderConfirmed(e) => service::commit(tx, e, env).await?,
            SagaEvent::OrderCancelled(e) => service::release(tx, e, env).await?,
            _ => return Ok(None),
        };
        if let Outcome::Nothing(why) = &outcome {
            tracing::info!(order_id = %env.aggregate_id, why, "inventory: nothing to do");
        }
        metrics::counter!("inventory_steps_total", "outcome" => outcome.label()).increment(1);
        Ok(Some(outcome))
    }
}

fn skus_of(env: &Envelope) -> Vec<Uuid> {
    match SagaEvent::from_envelope(env) {
        Ok(SagaEvent::OrderCreated(e)) => e.items.iter().map(|l| l.sku_id).collect(),
        Ok(SagaEvent::OrderConfirmed(e)) => e.items.iter().map(|l| l.sku_id).collect(),
        Ok(SagaEvent::OrderCancelled(e)) => e.items.iter().map(|l| l.sku_id).collect(),
        _ => Vec::new(),
    }
}

impl EventHandler for InventoryHandler {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a Envelope,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move { self.apply(tx, event).await.map(|_| ()) })
    }

    /// Availability shown on product pages changed: drop those products' cached details.
    fn after_commit<'a>(&'a self, event: &'a Envelope) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let skus = skus_of(event);
            if skus.is_empty() {
                return;
            }
            match super::repository::products_of(&self.db, &skus).await {
                Ok(products) => self.cache.invalidate_details(&products).await,
                Err(e) => tracing::warn!(error = %e, "inventory: cache invalidation lookup failed"),
            }
        })
    }

    fn wants(&self, event_type: &str) -> bool {
        [
            OrderCreated::TYPE,
            OrderConfirmed::TYPE,
            OrderCancelled::TYPE,
        ]
        .contains(&event_type)
    }
}
