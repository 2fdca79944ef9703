//! Cart's API tests: a real cart and a real catalog per test, on real Redis, Postgres and broker.
// A test binary: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cart;
mod consumer;
mod failures;
mod helpers;
mod limits;
mod validate;
