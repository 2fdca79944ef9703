//! Identity's API tests: one binary, each test with its own database, Redis prefix and mail folder.
// A test binary: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod enumeration;
mod helpers;
mod mailer;
mod operator;
mod platform;
mod profile;
mod register;
mod revocation;
mod sessions;
mod smtp_sink;
mod tokens;
mod unverified_expiry;
