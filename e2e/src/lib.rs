//! End to end (issue 11): the five services started in one process on one broker, driven over HTTP
//! with real tokens, and the invariant auditor every e2e test ends with (reusable by chaos runs).
//! A test dependency only: it links the `test-utils` fixtures and is never in a release binary.

// Fixtures fail loudly: a panic is how a broken fixture reports itself inside a test.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod audit;
pub mod stack;

pub use audit::{audit, audit_when_quiet};
pub use stack::{Options, Stack, User};
