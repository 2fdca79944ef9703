//! The platform surface every service has: OpenAPI, metrics, health, the error body for routes
//! that do not exist.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_error, Caller, TestApp};

#[tokio::test]
async fn the_openapi_document_names_every_public_route() {
    let app = TestApp::spawn().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    for path in [
        "/api/v1/products",
        "/api/v1/products/{id}",
        "/api/v1/products/slug/{slug}",
        "/api/v1/products/{id}/skus",
        "/api/v1/skus",
        "/api/v1/skus/{id}/stock",
        "/api/v1/categories/{id}/subtree",
        "/api/v1/brands/{id}/categories/{category_id}",
        "/api/v1/inventory/audit",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from /openapi.json"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // Path parameters are declared, so clients and fuzzers can fill them in.
    let params = &doc["paths"]["/api/v1/products/{id}/images/{image_id}"]["patch"]["parameters"];
    let names: Vec<&str> = params
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["id", "image_id"]);
}

#[tokio::test]
async fn metrics_count_cache_hits_and_readiness_names_the_dependencies() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let (id, _) = app.listed(&seller, "Metered", "3.00", 1).await;
    // The recorder is process-wide: count what this test's two reads add.
    let hits = app
        .metric(
            "catalog_cache_total",
            &[("entry", "public"), ("result", "hit")],
        )
        .await;
    let misses = app
        .metric(
            "catalog_cache_total",
            &[("entry", "public"), ("result", "miss")],
        )
        .await;
    for _ in 0..2 {
        let resp = app.get(&format!("/api/v1/products/{id}")).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    assert_eq!(
        app.metric(
            "catalog_cache_total",
            &[("entry", "public"), ("result", "miss")]
        )
        .await
            - misses,
        1.0,
        "the first read is a miss"
    );
    assert_eq!(
        app.metric(
            "catalog_cache_total",
            &[("entry", "public"), ("result", "hit")]
        )
        .await
            - hits,
        1.0,
        "the second read is a hit"
    );
    let ready: Value = app.get("/health/ready").await.json().await.unwrap();
    assert_eq!(ready["checks"]["postgres"], "ok");
    assert_eq!(ready["checks"]["kafka"], "ok");
    assert_error(
        app.get("/api/v1/nope").await,
        StatusCode::NOT_FOUND,
        "ROUTE_NOT_FOUND",
    )
    .await;
}
