//! The saga as a user meets it (issue 11): five services on one broker, driven over HTTP with real
//! tokens. Every test waits for the saga by polling with a deadline and ends with the invariant
//! auditor.
// A test binary: unwrap/expect/panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod auditor;
mod flows;
mod races;

use std::time::Duration;

use e2e::Stack;

/// The auditor over the quiet system: no problem may remain.
pub async fn assert_audit_clean(stack: &Stack) {
    let problems = e2e::audit_when_quiet(stack, Duration::from_secs(20)).await;
    assert!(problems.is_empty(), "auditor:\n  {}", problems.join("\n  "));
}
