//! Catalog's API tests: one binary; each test has its own database, Redis prefix and broker
//! topic prefix, so they run in parallel.
// A test binary: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod brands;
mod cache;
mod categories;
mod helpers;
mod inventory;
mod listing;
mod platform;
mod products;
mod revocation;
mod saga;
mod skus;
