//! Order's API tests: a real order service and catalog per test, on real Postgres and broker.
// A test binary: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod deadline;
mod helpers;
mod placement;
mod reads;
mod saga;
