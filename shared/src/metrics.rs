//! Prometheus metrics: one process-wide recorder, HTTP request counts and latencies per matched
//! route, and `/metrics` in the Prometheus text format.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Install the recorder once per process (tests start several services in one process).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), LATENCY_BUCKETS)
                .ok()?;
            match builder.install_recorder() {
                Ok(h) => {
                    start_upkeep(h.clone());
                    Some(h)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// How often histogram samples are folded into their buckets without a scrape.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The recorder keeps every histogram sample until upkeep folds it into the buckets; a scrape
/// does that, but with no scraper the samples pile up (8 bytes a request, for ever). A thread of
/// its own runs the upkeep every few seconds, whether or not anyone scrapes.
fn start_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "metrics upkeep thread not started; scrapes still drain samples");
    }
}

pub async fn render() -> Response {
    let body = handle().map(|h| h.render()).unwrap_or_default();
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        body,
    )
        .into_response()
}

/// The method as a label: the standard methods by name, anything a client invents as `OTHER`, so
/// a client cannot grow the label set (the path label is the matched route or `unmatched`, the
/// status a number).
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

/// Middleware: `http_requests_total` and `http_request_duration_seconds` by method, route, status.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    let labels = [
        ("method", method.to_owned()),
        ("path", path),
        ("status", status),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    /// The value of `http_requests_total` for these labels in the process-wide recorder.
    fn requests(method: &str, path: &str, status: &str) -> u64 {
        let text = handle().map(|h| h.render()).unwrap_or_default();
        let series = format!(
            "http_requests_total{{method=\"{method}\",path=\"{path}\",status=\"{status}\"}}"
        );
        text.lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn invented_methods_share_one_label_so_clients_cannot_grow_the_series() {
        handle();
        let app = axum::Router::new()
            .route("/metrics-method-probe", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(track));
        let before = requests("OTHER", "/metrics-method-probe", "405");
        for m in ["FOOBAR", "BAZ", "PROPFIND"] {
            let req = Request::builder()
                .method(m)
                .uri("/metrics-method-probe")
                .body(Body::empty())
                .unwrap();
            app.clone().oneshot(req).await.unwrap();
        }
        assert_eq!(
            requests("OTHER", "/metrics-method-probe", "405"),
            before + 3
        );
        let text = handle().unwrap().render();
        for m in ["FOOBAR", "BAZ", "PROPFIND"] {
            assert!(
                !text.contains(&format!("method=\"{m}\"")),
                "{m} became a label"
            );
        }
    }
}
