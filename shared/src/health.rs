//! `/health/live` answers while the process serves HTTP; `/health/ready` checks every dependency the
//! service declared (Postgres, Redis, later the broker) with a short timeout and answers 503 naming
//! the ones that failed, so a load balancer stops routing to a replica that cannot do its work.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

type CheckFn =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

#[derive(Clone, Default)]
pub struct HealthChecks {
    checks: Vec<(&'static str, CheckFn)>,
}

impl HealthChecks {
    pub fn add<F, Fut>(&mut self, name: &'static str, f: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks.push((name, Arc::new(move || Box::pin(f()))));
    }

    /// Run every check at once, each with a 2 s timeout and in its own task, so one that hangs,
    /// fails or panics is reported under its name as unavailable and never hides the others.
    pub async fn run(&self) -> (bool, Map<String, Value>) {
        let running: Vec<_> = self
            .checks
            .iter()
            .map(|(name, check)| {
                let check = check.clone();
                let task = tokio::spawn(async move {
                    match tokio::time::timeout(CHECK_TIMEOUT, check()).await {
                        Ok(outcome) => outcome,
                        Err(_) => Err("timed out".to_string()),
                    }
                });
                (*name, task)
            })
            .collect();
        let results =
            futures::future::join_all(running.into_iter().map(|(name, task)| async move {
                let outcome = match task.await {
                    Ok(outcome) => outcome,
                    Err(e) if e.is_panic() => Err("the check panicked".to_string()),
                    Err(e) => Err(e.to_string()),
                };
                (name, outcome)
            }))
            .await;
        let mut all_ok = true;
        let mut map = Map::new();
        for (name, outcome) in results {
            match outcome {
                Ok(()) => {
                    map.insert(name.into(), json!("ok"));
                }
                Err(e) => {
                    all_ok = false;
                    tracing::warn!(check = name, error = %e, "readiness check failed");
                    map.insert(name.into(), json!("unavailable"));
                }
            }
        }
        (all_ok, map)
    }
}

pub async fn live() -> Json<Value> {
    Json(json!({ "status": "live" }))
}

pub async fn ready(checks: HealthChecks) -> Response {
    let (ok, map) = checks.run().await;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({ "status": if ok { "ready" } else { "unavailable" }, "checks": map });
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_readiness_check_counts_as_failed_and_is_named() {
        let mut checks = HealthChecks::default();
        checks.add("postgres", || async { Ok(()) });
        checks.add("buggy", || async { panic!("check bug") });
        let (ok, map) = checks.run().await;
        assert!(!ok, "a panicking check makes the service not ready");
        assert_eq!(map.get("buggy"), Some(&json!("unavailable")), "{map:?}");
        assert_eq!(map.get("postgres"), Some(&json!("ok")), "{map:?}");
        assert_eq!(map.len(), 2, "{map:?}");
        let resp = ready(checks).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
