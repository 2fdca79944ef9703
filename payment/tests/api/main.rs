//! Payment's tests: a real payment service per test, on real Postgres and broker.
// A test binary: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod cancels;
mod crash;
mod helpers;
mod ledger_db;
mod paths;
mod property;
