//! Work done after the answer has gone out (the mail of forgot-password and resend-verification),
//! so an answer costs the same whatever the work would have been. Errors are logged; the count of
//! unfinished jobs lets tests (and shutdown) wait until all of it is done.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

#[derive(Clone, Default)]
pub struct Background(Arc<Inner>);

#[derive(Default)]
struct Inner {
    running: AtomicUsize,
    idle: Notify,
}

/// Counts a job done however it ends (returned, panicked or aborted).
struct Done(Arc<Inner>);

impl Drop for Done {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Background {
    /// Run `job` on its own task; an error is logged with `what`.
    pub fn spawn<F, E>(&self, what: &'static str, job: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Debug + Send + 'static,
    {
        self.0.running.fetch_add(1, Ordering::SeqCst);
        let done = Done(self.0.clone());
        tokio::spawn(async move {
            let _done = done;
            if let Err(e) = job.await {
                tracing::error!(error = ?e, job = what, "background job failed");
            }
        });
    }

    /// Jobs started and not finished yet.
    pub fn running(&self) -> usize {
        self.0.running.load(Ordering::SeqCst)
    }

    /// Resolves once no job is running.
    pub async fn idle(&self) {
        loop {
            let idle = self.0.idle.notified();
            if self.running() == 0 {
                return;
            }
            idle.await;
        }
    }
}
