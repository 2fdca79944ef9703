//! The saga's events (contract §7), each a struct defined once here and used by producer and consumer
//! alike, wrapped in the envelope of contract §9. Every event is keyed by its order id, so all events of
//! one order keep their order within a topic. The JSON of every event is pinned by golden files
//! (`shared/tests/golden/`): changing the wire format is a visible decision, and a change that is
//! not backward compatible bumps `VERSION`.

mod envelope;
mod payloads;

pub use envelope::{DecodeError, Envelope, EventMeta, HEADER_KEYS};
pub use payloads::*;

use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

pub mod topics {
    pub const ORDERS: &str = "orders.events";
    pub const CATALOG: &str = "catalog.events";
    pub const PAYMENTS: &str = "payments.events";
    pub const ALL: [&str; 3] = [ORDERS, CATALOG, PAYMENTS];

    /// The dead-letter topic of `topic`.
    pub fn dlq(topic: &str) -> String {
        format!("{topic}.dlq")
    }
}

/// A typed event: its name, version, topic, and the order it belongs to.
pub trait Event: Serialize + DeserializeOwned + Send + Sync {
    const TYPE: &'static str;
    const VERSION: u16;
    const TOPIC: &'static str;
    const AGGREGATE_TYPE: &'static str = "order";
    /// The aggregate id, also the Kafka key.
    fn aggregate_id(&self) -> Uuid;
}

macro_rules! event {
    ($ty:ident, $name:literal, $version:literal, $topic:expr) => {
        impl Event for $ty {
            const TYPE: &'static str = $name;
            const VERSION: u16 = $version;
            const TOPIC: &'static str = $topic;
            fn aggregate_id(&self) -> Uuid {
                self.order_id
            }
        }
    };
}

event!(OrderCreated, "OrderCreated", 1, topics::ORDERS);
event!(PaymentRequested, "PaymentRequested", 1, topics::ORDERS);
event!(OrderConfirmed, "OrderConfirmed", 1, topics::ORDERS);
event!(OrderCancelled, "OrderCancelled", 1, topics::ORDERS);
event!(InventoryReserved, "InventoryReserved", 1, topics::CATALOG);
event!(
    InventoryReservationFailed,
    "InventoryReservationFailed",
    1,
    topics::CATALOG
);
event!(InventoryCommitted, "InventoryCommitted", 1, topics::CATALOG);
event!(InventoryReleased, "InventoryReleased", 1, topics::CATALOG);
event!(PaymentAuthorized, "PaymentAuthorized", 1, topics::PAYMENTS);
event!(PaymentFailed, "PaymentFailed", 1, topics::PAYMENTS);
event!(PaymentCaptured, "PaymentCaptured", 1, topics::PAYMENTS);
event!(
    PaymentCaptureFailed,
    "PaymentCaptureFailed",
    1,
    topics::PAYMENTS
);
event!(PaymentVoided, "PaymentVoided", 1, topics::PAYMENTS);
event!(PaymentRefunded, "PaymentRefunded", 1, topics::PAYMENTS);

/// Every saga event, for handlers that dispatch on the type.
#[derive(Debug, Clone, PartialEq)]
pub enum SagaEvent {
    OrderCreated(OrderCreated),
    PaymentRequested(PaymentRequested),
    OrderConfirmed(OrderConfirmed),
    OrderCancelled(OrderCancelled),
    InventoryReserved(InventoryReserved),
    InventoryReservationFailed(InventoryReservationFailed),
    InventoryCommitted(InventoryCommitted),
    InventoryReleased(InventoryReleased),
    PaymentAuthorized(PaymentAuthorized),
    PaymentFailed(PaymentFailed),
    PaymentCaptured(PaymentCaptured),
    PaymentCaptureFailed(PaymentCaptureFailed),
    PaymentVoided(PaymentVoided),
    PaymentRefunded(PaymentRefunded),
}

impl SagaEvent {
    /// Decode any saga event from its envelope; unknown types and versions are errors.
    pub fn from_envelope(env: &Envelope) -> Result<Self, DecodeError> {
        macro_rules! try_each {
            ($($v:ident),*) => {
                match env.event_type.as_str() {
                    $( <$v as Event>::TYPE => env.decode::<$v>().map(SagaEvent::$v), )*
                    other => Err(DecodeError::UnknownType(other.to_owned())),
                }
            };
        }
        try_each!(
            OrderCreated,
            PaymentRequested,
            OrderConfirmed,
            OrderCancelled,
            InventoryReserved,
            InventoryReservationFailed,
            InventoryCommitted,
            InventoryReleased,
            PaymentAuthorized,
            PaymentFailed,
            PaymentCaptured,
            PaymentCaptureFailed,
            PaymentVoided,
            PaymentRefunded
        )
    }
}
