//! The envelope of contract §9: metadata around a typed payload. The same metadata travels as Kafka
//! headers so infrastructure (DLQ, re-drive, tracing) can read it without parsing the payload.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::Event;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub event_id: Uuid,
    pub event_type: String,
    pub event_version: u16,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub occurred_at: DateTime<Utc>,
    /// The service that produced the event.
    pub source: String,
    /// The request (or first event) that started the chain.
    pub correlation_id: Option<String>,
    /// The event that caused this one, if any.
    pub causation_id: Option<Uuid>,
    /// W3C trace context of the span that wrote the event.
    pub traceparent: Option<String>,
    pub payload: Value,
}

/// Where an event comes from: the request or event that caused it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventMeta {
    pub correlation_id: Option<String>,
    pub causation_id: Option<Uuid>,
}

impl EventMeta {
    /// For an event caused by the HTTP request being handled (its request id correlates).
    pub fn from_request() -> Self {
        Self {
            correlation_id: crate::request_id::current(),
            causation_id: None,
        }
    }

    /// For an event caused by another event: same correlation, causation = that event.
    pub fn caused_by(cause: &Envelope) -> Self {
        Self {
            correlation_id: cause
                .correlation_id
                .clone()
                .or_else(|| Some(cause.event_id.to_string())),
            causation_id: Some(cause.event_id),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("not an event envelope: {0}")]
    Malformed(String),
    #[error("expected a {expected} event, got {actual}")]
    WrongType {
        expected: &'static str,
        actual: String,
    },
    #[error(
        "{event_type} version {version} is not supported (this build reads up to {supported})"
    )]
    UnsupportedVersion {
        event_type: String,
        version: u16,
        supported: u16,
    },
    #[error("unknown event type {0}")]
    UnknownType(String),
    #[error("payload of {event_type} does not decode: {error}")]
    Payload { event_type: String, error: String },
}

/// Header names, in the order they are written.
pub const HEADER_KEYS: [&str; 10] = [
    "event_id",
    "event_type",
    "event_version",
    "aggregate_type",
    "aggregate_id",
    "occurred_at",
    "source",
    "correlation_id",
    "causation_id",
    "traceparent",
];

impl Envelope {
    /// Wrap `event` with fresh id and time, capturing the current trace context.
    pub fn new<E: Event>(
        source: &str,
        event: &E,
        meta: &EventMeta,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self {
            event_id: crate::id::new_id(),
            event_type: E::TYPE.to_owned(),
            event_version: E::VERSION,
            aggregate_type: E::AGGREGATE_TYPE.to_owned(),
            aggregate_id: event.aggregate_id().to_string(),
            occurred_at: Utc::now(),
            source: source.to_owned(),
            correlation_id: meta.correlation_id.clone(),
            causation_id: meta.causation_id,
            traceparent: crate::telemetry::current_traceparent(),
            payload: serde_json::to_value(event)?,
        })
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, DecodeError> {
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))
    }

    pub fn to_json(&self) -> Vec<u8> {
        // An envelope is plain data; serialising it cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The typed payload, if this envelope holds an `E` of a version this build understands.
    pub fn decode<E: Event>(&self) -> Result<E, DecodeError> {
        if self.event_type != E::TYPE {
            return Err(DecodeError::WrongType {
                expected: E::TYPE,
                actual: self.event_type.clone(),
            });
        }
        if self.event_version > E::VERSION || self.event_version == 0 {
            return Err(DecodeError::UnsupportedVersion {
                event_type: self.event_type.clone(),
                version: self.event_version,
                supported: E::VERSION,
            });
        }
        serde_json::from_value(self.payload.clone()).map_err(|e| DecodeError::Payload {
            event_type: self.event_type.clone(),
            error: e.to_string(),
        })
    }

    /// The metadata as Kafka headers (absent optional values are left out).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![
            ("event_id", self.event_id.to_string()),
            ("event_type", self.event_type.clone()),
            ("event_version", self.event_version.to_string()),
            ("aggregate_type", self.aggregate_type.clone()),
            ("aggregate_id", self.aggregate_id.clone()),
            (
                "occurred_at",
                self.occurred_at
                    .to_rfc3339_opts(SecondsFormat::Micros, true),
            ),
            ("source", self.source.clone()),
        ];
        if let Some(c) = &self.correlation_id {
            h.push(("correlation_id", c.clone()));
        }
        if let Some(c) = self.causation_id {
            h.push(("causation_id", c.to_string()));
        }
        if let Some(t) = &self.traceparent {
            h.push(("traceparent", t.clone()));
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{OrderConfirmed, PaymentFailed, SagaEvent, SkuQuantity};

    fn confirmed() -> OrderConfirmed {
        OrderConfirmed {
            order_id: Uuid::now_v7(),
            buyer_id: Uuid::now_v7(),
            items: vec![SkuQuantity {
                sku_id: Uuid::now_v7(),
                quantity: 2,
            }],
        }
    }

    #[test]
    fn an_envelope_round_trips_and_decodes_to_its_type() {
        let e = confirmed();
        let env = Envelope::new("order", &e, &EventMeta::default()).unwrap();
        assert_eq!(env.aggregate_id, e.order_id.to_string());
        let back = Envelope::from_json(&env.to_json()).unwrap();
        assert_eq!(back, env);
        assert_eq!(back.decode::<OrderConfirmed>().unwrap(), e);
        assert_eq!(
            SagaEvent::from_envelope(&back).unwrap(),
            SagaEvent::OrderConfirmed(e)
        );
    }

    #[test]
    fn decoding_as_another_type_or_a_newer_version_is_an_error() {
        let mut env = Envelope::new("order", &confirmed(), &EventMeta::default()).unwrap();
        assert!(matches!(
            env.decode::<PaymentFailed>(),
            Err(DecodeError::WrongType { .. })
        ));
        env.event_version = 2;
        assert!(matches!(
            env.decode::<OrderConfirmed>(),
            Err(DecodeError::UnsupportedVersion { .. })
        ));
        env.event_type = "Nope".into();
        assert!(matches!(
            SagaEvent::from_envelope(&env),
            Err(DecodeError::UnknownType(_))
        ));
        assert!(Envelope::from_json(b"{not json").is_err());
    }

    #[test]
    fn caused_events_keep_the_correlation_and_name_their_cause() {
        let first = Envelope::new(
            "order",
            &confirmed(),
            &EventMeta {
                correlation_id: Some("req-1".into()),
                causation_id: None,
            },
        )
        .unwrap();
        let meta = EventMeta::caused_by(&first);
        assert_eq!(meta.correlation_id.as_deref(), Some("req-1"));
        assert_eq!(meta.causation_id, Some(first.event_id));
        let headers = Envelope::new("catalog", &confirmed(), &meta)
            .unwrap()
            .headers();
        assert!(headers.contains(&("causation_id", first.event_id.to_string())));
        assert!(headers.contains(&("correlation_id", "req-1".to_string())));
    }
}
