//! Dependencies down: a clear 503 in the error body, never a panic, nothing half-written.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::helpers::{assert_error, buyer, TestApp};

#[tokio::test]
async fn with_the_catalog_unreachable_pricing_operations_answer_503() {
    let app = TestApp::spawn_with(|c| {
        c.catalog_url = "http://127.0.0.1:1".into();
        c.catalog_timeout_ms = 500;
    })
    .await;
    let b = buyer();
    let err = assert_error(
        app.add(&b, &uuid::Uuid::now_v7().to_string(), 1).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "CATALOG_UNAVAILABLE",
    )
    .await;
    assert!(
        !err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1"),
        "no internals"
    );
    // A line from before the catalog went away (written straight into the store).
    let sku = uuid::Uuid::now_v7();
    let snapshot = cart::cart::store::Snapshot {
        product_id: uuid::Uuid::now_v7(),
        product_name: "Earlier".into(),
        image_url: None,
        unit_price: "3.00".parse().unwrap(),
        currency: "USD".parse().unwrap(),
    };
    app.state.store.add(b.id, sku, 2, &snapshot).await.unwrap();
    assert_error(
        app.send(Method::POST, "/api/v1/cart/validate", &b.token, None)
            .await,
        StatusCode::SERVICE_UNAVAILABLE,
        "CATALOG_UNAVAILABLE",
    )
    .await;
    // Reading the cart needs no catalog.
    assert_eq!(app.get_cart(&b).await["item_count"], 2);
}

#[tokio::test]
async fn a_stored_line_that_cannot_be_read_is_an_error_never_a_free_or_missing_item() {
    let app = TestApp::spawn().await;
    let b = buyer();
    let skus = app.product("Corruptible", &[("9.99", 5)]).await;
    app.add_ok(&b, &skus[0], 2).await;
    let [_, snapshots, _] = app.keys(&b);
    let mut redis = app.redis();
    let good: String = redis::cmd("HGET")
        .arg(&snapshots)
        .arg(&skus[0])
        .query_async(&mut redis)
        .await
        .unwrap();
    let mut broken: serde_json::Value = serde_json::from_str(&good).unwrap();
    broken["unit_price"] = "not-a-price".into();
    let _: () = redis::cmd("HSET")
        .arg(&snapshots)
        .arg(&skus[0])
        .arg(broken.to_string())
        .query_async(&mut redis)
        .await
        .unwrap();
    // Before: the line was priced 0.00 (unwrap_or_default). Now the cart says it cannot be read,
    // with the generic body, and no total that would undercharge.
    let err = assert_error(
        app.send(Method::GET, "/api/v1/cart", &b.token, None).await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL_ERROR",
    )
    .await;
    assert!(
        !err.to_string().contains("not-a-price"),
        "no internals: {err}"
    );
    // Restoring the line makes the cart whole again: nothing else was touched.
    let _: () = redis::cmd("HSET")
        .arg(&snapshots)
        .arg(&skus[0])
        .arg(&good)
        .query_async(&mut redis)
        .await
        .unwrap();
    let cart = app.get_cart(&b).await;
    assert_eq!(cart["item_count"], 2);
}

struct OwnRedis(Child, u16);

impl OwnRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        for _ in 0..50 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Self(child, port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn with_redis_gone_the_cart_answers_503_not_a_panic() {
    let mut redis = OwnRedis::start();
    let url = format!("redis://127.0.0.1:{}", redis.1);
    let app = TestApp::spawn_with(|c| c.common.redis_url = shared::config::Secret::new(url)).await;
    let sku = app.product("Kite", &[("15.00", 5)]).await.remove(0);
    let b = buyer();
    app.add_ok(&b, &sku, 1).await;

    let _ = redis.0.kill();
    let _ = redis.0.wait();
    for resp in [
        app.send(Method::GET, "/api/v1/cart", &b.token, None).await,
        app.add(&b, &sku, 1).await,
        app.send(Method::DELETE, "/api/v1/cart", &b.token, None)
            .await,
    ] {
        assert_error(
            resp,
            StatusCode::SERVICE_UNAVAILABLE,
            "CART_STORE_UNAVAILABLE",
        )
        .await;
    }
    let live = app
        .client
        .get(format!("{}/health/live", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK, "the process is alive");
    let ready = app
        .client
        .get(format!("{}/health/ready", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ready.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "and says it is not ready"
    );
}
