//! End to end (issue 11): the five services started in one process on one broker, driven over HTTP
//! with real tokens, and the invariant auditor every e2e test ends with (reusable by chaos runs).
//! A test dependency only: it links the `test-utils` fixtures and is never in a release binary.

// Fixtures fail loudly: a panic is how a broken fixture reports itself inside a test.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod stack;

pub use stack::{Options, Stack, User};

/// The invariant auditor (`auditor` crate) over this stack: every problem, one line each.
pub async fn audit(stack: &Stack) -> Vec<String> {
    auditor::audit(&stack.audit_target()).await
}

/// Audit until clean or `timeout` passes (events still in flight settle); the last problems found.
pub async fn audit_when_quiet(stack: &Stack, timeout: std::time::Duration) -> Vec<String> {
    auditor::audit_when_quiet(&stack.audit_target(), timeout).await
}
