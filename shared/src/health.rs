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

    pub async fn run(&self) -> (bool, Map<String, Value>) {
        let results = futures_join(self.checks.iter().map(|(name, check)| {
            let fut = check();
            let name: &'static str = name;
            async move {
                let outcome = match tokio::time::timeout(Duration::from_secs(2), fut).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err("timed out".to_string()),
                };
                (name, outcome)
            }
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

async fn futures_join<F>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
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
