//! The shared HTTP stack as identity exposes it: error bodies for malformed requests, request ids,
//! health, metrics, OpenAPI, CORS.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_error, TestApp};

#[tokio::test]
async fn malformed_json_gets_the_error_body() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .post(app.url("/api/v1/users/register"))
        .header("content-type", "application/json")
        .body("{\"username\": \"x\",")
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "MALFORMED_JSON").await;
    let resp = app
        .client
        .post(app.url("/api/v1/users/login"))
        .header("content-type", "application/json")
        .body("{\"username\": 42}")
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY").await;
    let resp = app
        .client
        .post(app.url("/api/v1/users/login"))
        .body("username=x")
        .send()
        .await
        .unwrap();
    assert_error(
        resp,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let app = TestApp::spawn_with(|c| c.common.body_limit_bytes = 4096).await;
    let big = format!(
        "{{\"username\": \"{}\", \"password\": \"x\"}}",
        "a".repeat(10_000)
    );
    let resp = app
        .client
        .post(app.url("/api/v1/users/login"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE").await;
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_error_body() {
    let app = TestApp::spawn().await;
    let resp = app.get("/api/v1/nope").await;
    assert_error(resp, StatusCode::NOT_FOUND, "ROUTE_NOT_FOUND").await;
    let resp = app
        .client
        .delete(app.url("/api/v1/users/register"))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED").await;
}

#[tokio::test]
async fn request_ids_are_echoed_or_made() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "abc-123");
    let resp = app.get("/health/live").await;
    let made = resp.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(made).is_ok(), "{made}");
    let resp = app
        .client
        .get(app.url("/nope"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let echoed = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = resp.json().await.unwrap();
    let replaced = body["error"]["request_id"].as_str().unwrap_or_default();
    assert_ne!(replaced, "bad id with spaces", "{body}");
    assert!(
        uuid::Uuid::parse_str(replaced).is_ok(),
        "an unacceptable id is replaced by a fresh UUID: {body}"
    );
    assert_eq!(
        replaced, echoed,
        "the body and the header carry the same id"
    );
}

#[tokio::test]
async fn health_checks_report_each_dependency() {
    let app = TestApp::spawn().await;
    let live = app.get("/health/live").await;
    assert_eq!(live.status(), StatusCode::OK);
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["postgres"], "ok");
    assert_eq!(body["checks"]["redis"], "ok");
}

#[tokio::test]
async fn readiness_fails_when_the_database_goes_away() {
    let app = TestApp::spawn().await;
    app.state.db.close().await;
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["postgres"], "unavailable");
    assert_eq!(body["checks"]["redis"], "ok");
}

/// The value of the sample `name{labels…}` in a Prometheus text scrape (0 when absent): the
/// sample whose labels include every pair of `labels`; more than one such sample is a failure.
fn sample(scrape: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<f64> = scrape
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix('{')?;
            let (set, value) = rest.rsplit_once("} ")?;
            labels
                .iter()
                .all(|(k, v)| set.split(',').any(|kv| kv == format!("{k}=\"{v}\"")))
                .then(|| value.trim().parse::<f64>().unwrap())
        })
        .collect();
    assert!(
        matching.len() <= 1,
        "{name} {labels:?} is ambiguous: {matching:?}"
    );
    matching.first().copied().unwrap_or(0.0)
}

/// The recorder is process-wide: every test in this binary counts into it. So the test reads its
/// series before and after, and uses one no other test touches (`DELETE` on `/api/v1/users/{id}`,
/// a 405): three different ids must land in one series labelled by the route template, and the
/// latency histogram must count the same three requests.
#[tokio::test]
async fn metrics_count_requests_by_route() {
    let app = TestApp::spawn().await;
    let route = [
        ("method", "DELETE"),
        ("path", "/api/v1/users/{id}"),
        ("status", "405"),
    ];
    let scrape = || async { app.get("/metrics").await.text().await.unwrap() };
    let before = scrape().await;
    let ids: Vec<String> = (0..3).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    for id in &ids {
        let resp = app
            .client
            .delete(app.url(&format!("/api/v1/users/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
    let after = scrape().await;
    assert_eq!(
        sample(&after, "http_requests_total", &route)
            - sample(&before, "http_requests_total", &route),
        3.0,
        "{after}"
    );
    assert_eq!(
        sample(&after, "http_request_duration_seconds_count", &route)
            - sample(&before, "http_request_duration_seconds_count", &route),
        3.0,
        "{after}"
    );
    for id in &ids {
        assert!(
            !after.contains(id.as_str()),
            "raw paths are not labels: {id}"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let app = TestApp::spawn().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/users/register",
        "/api/v1/users/login",
        "/api/v1/users/refresh",
        "/api/v1/users/logout",
        "/api/v1/users/me",
        "/api/v1/users/me/password",
        "/api/v1/users/verify-email",
        "/api/v1/users/forgot-password",
        "/api/v1/users/resend-verification",
        "/api/v1/users/reset-password",
        "/api/v1/users",
        "/api/v1/users/{id}",
        "/api/v1/users/{id}/role",
        "/.well-known/jwks.json",
    ] {
        assert!(
            paths.contains_key(p),
            "{p} missing from the OpenAPI document"
        );
    }
}

#[tokio::test]
async fn cors_preflight_allows_configured_origins_only() {
    let app = TestApp::spawn_with(|c| {
        c.common.cors_allowed_origins = vec!["https://shop.example".into()]
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/v1/users/login"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let ok = preflight("https://shop.example").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}
