//! When a buyer's order is confirmed, the lines they bought leave their cart. Redis-only: the
//! removal and the de-dup key are written in one `MULTI`/`EXEC` (the consumer skips events whose
//! key exists), so a redelivery removes nothing twice — which matters once the buyer has added the
//! same item again for a new order.

use shared::consumer::{BoxFuture, HandlerError, RedisEventHandler};
use shared::events::{DecodeError, Envelope, Event, OrderConfirmed, SagaEvent};

use crate::cart::store::CartStore;

/// How long the de-dup key of a handled event is kept (longer than any redelivery).
const DONE_TTL_SECS: i64 = 7 * 24 * 3600;

pub struct OrderConfirmedHandler {
    pub prefix: String,
}

impl RedisEventHandler for OrderConfirmedHandler {
    fn handle<'a>(
        &'a self,
        redis: &'a mut redis::aio::ConnectionManager,
        event: &'a Envelope,
        done_key: &'a str,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let confirmed = match SagaEvent::from_envelope(event) {
                Ok(SagaEvent::OrderConfirmed(e)) => e,
                Ok(_) | Err(DecodeError::UnknownType(_)) => return Ok(()),
                Err(e) => return Err(HandlerError::Permanent(e.into())),
            };
            let [q, l, t] = CartStore::keys(&self.prefix, confirmed.buyer_id);
            let skus: Vec<String> = confirmed
                .items
                .iter()
                .map(|i| i.sku_id.to_string())
                .collect();
            let mut pipe = redis::pipe();
            pipe.atomic();
            if !skus.is_empty() {
                pipe.hdel(&q, &skus).ignore();
                pipe.hdel(&l, &skus).ignore();
                pipe.hdel(&t, &skus).ignore();
            }
            pipe.cmd("SET")
                .arg(done_key)
                .arg(1)
                .arg("EX")
                .arg(DONE_TTL_SECS)
                .ignore();
            pipe.query_async::<()>(redis)
                .await
                .map_err(|e| HandlerError::Transient(e.into()))?;
            metrics::counter!("cart_lines_removed_by_orders_total")
                .increment(u64::try_from(skus.len()).unwrap_or(0));
            Ok(())
        })
    }

    fn wants(&self, event_type: &str) -> bool {
        [OrderConfirmed::TYPE].contains(&event_type)
    }
}
