//! Koupang payment: one payment per order with an explicit state machine, gateway calls made
//! outside the consumer's transaction with durable retries (docs/adr/013), a mock gateway that
//! behaves like a provider's test mode, and a double-entry ledger the database keeps balanced
//! (contract §8 and the payment side of §7).

pub mod config;
pub mod error;
pub mod gateway;
pub mod ledger;
pub mod payments;
pub mod reconcile;
pub mod routes;
pub mod saga;
pub mod startup;
pub mod worker;

pub use config::PaymentConfig;
pub use startup::{AppState, Application};

/// Payment's schema, embedded so the binary runs from any folder.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/payment");
