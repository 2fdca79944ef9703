//! The event backbone proven against the real broker and Postgres: outbox, relay, consumer with
//! inbox and DLQ, re-drive, and the failure cases of docs/events.md.
// A test binary: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod consumer_faults;
mod doze;
mod faults;
mod golden;
mod harness;
mod pipeline;
mod service;
