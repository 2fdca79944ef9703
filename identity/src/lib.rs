//! Koupang identity: users and roles, sessions with rotating refresh tokens, email verification
//! and password reset, and the only signer of access tokens (contract §3).

pub mod auth;
pub mod background;
pub mod cli;
pub mod config;
pub mod error;
pub mod mail;
pub mod password;
pub mod ratelimit;
pub mod routes;
pub mod startup;
pub mod tokens;
pub mod users;

pub use config::IdentityConfig;
pub use startup::{AppState, Application};

/// Identity's schema, embedded so the binary runs from any folder.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/identity");
