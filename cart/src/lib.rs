//! Koupang cart (contract §5): one cart per buyer, kept in Redis only. Lines are priced from the
//! catalog when they are added (the client never supplies a price), limits are enforced
//! atomically by Lua scripts, and a confirmed order takes its lines out of the cart.

pub mod cart;
pub mod config;
pub mod consumer;
pub mod error;
pub mod routes;
pub mod startup;

pub use config::CartConfig;
pub use startup::{AppState, Application};
