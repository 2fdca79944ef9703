//! Koupang order: placement (idempotent, priced by the catalog), the buyer's and sellers' views,
//! cancel, ship and deliver (contract §6), the order side of the saga and the payment deadline
//! (contract §7).

pub mod cart_client;
pub mod config;
pub mod deadline;
pub mod error;
pub mod orders;
pub mod routes;
pub mod saga;
pub mod startup;

pub use config::OrderConfig;
pub use startup::{AppState, Application};

/// Order's schema, embedded so the binary runs from any folder.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/orders");
