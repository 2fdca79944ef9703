//! Koupang's platform crate: everything the five services share so that they read and behave as one
//! system — configuration, the one JSON error body, auth, the service bootstrap, telemetry, health,
//! metrics, pagination, money, ids, and (behind `test-utils`) the test fixtures.

pub mod auth;
pub mod catalog_client;
pub mod config;
pub mod consumer;
pub mod db;
pub mod dlq;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod id;
pub mod kafka;
pub mod metrics;
pub mod money;
pub mod outbox;
pub mod pagination;
pub mod redis;
pub mod request_id;
pub mod server;
pub mod telemetry;

#[cfg(feature = "test-utils")]
pub mod test_utils;

pub use error::{ApiError, FieldError};
pub use server::{RunningService, ServiceBuilder};
