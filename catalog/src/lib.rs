//! Koupang catalog: products and their SKUs, images, categories and brands (contract §4), and the
//! inventory side of the order saga — reservations held, committed and released (contract §7).

pub mod brands;
pub mod cache;
pub mod categories;
pub mod config;
pub mod error;
pub mod fields;
pub mod inventory;
pub mod products;
pub mod routes;
pub mod slug;
pub mod startup;

pub use config::CatalogConfig;
pub use startup::{AppState, Application};

/// Catalog's schema, embedded so the binary runs from any folder.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/catalog");
