//! The product cache: reads are served from Redis, every write that changes what a reader sees
//! drops the entry, and the service answers from Postgres when Redis is unreachable.

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{order_created, Caller, TestApp};

async fn detail(app: &TestApp, id: &str) -> Value {
    let resp = app.get(&format!("/api/v1/products/{id}")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

/// Change the name behind the service's back: only a read that skips the cache can see it.
async fn rename_in_db(app: &TestApp, id: &str, name: &str) {
    sqlx::query("UPDATE products SET name = $2 WHERE id = $1::uuid")
        .bind(id)
        .bind(name)
        .execute(&app.state.db)
        .await
        .unwrap();
}

#[tokio::test]
async fn details_are_served_from_the_cache_until_a_write_invalidates_them() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let (id, sku) = app.listed(&seller, "Clock", "12.00", 5).await;
    assert_eq!(detail(&app, &id).await["name"], "Clock");
    rename_in_db(&app, &id, "Sneaky").await;
    assert_eq!(
        detail(&app, &id).await["name"],
        "Clock",
        "served from the cache"
    );

    // Each kind of write drops the entry.
    let writes: Vec<(&str, String, Value)> = vec![
        (
            "product",
            format!("/api/v1/products/{id}"),
            json!({"description": "ticks"}),
        ),
        (
            "sku",
            format!("/api/v1/skus/{sku}"),
            json!({"price": "13.00"}),
        ),
        (
            "stock",
            format!("/api/v1/skus/{sku}/stock"),
            json!({"delta": 2}),
        ),
        (
            "image",
            format!("/api/v1/products/{id}/images"),
            json!({"url": "https://img.example/c.png"}),
        ),
    ];
    for (i, (what, path, body)) in writes.into_iter().enumerate() {
        let hidden = format!("Hidden {i}");
        detail(&app, &id).await; // make sure an entry is cached
        rename_in_db(&app, &id, &hidden).await;
        let resp = if what == "stock" || what == "image" {
            app.post_auth(&path, &seller.token, body).await
        } else {
            app.patch_auth(&path, &seller.token, body).await
        };
        assert!(resp.status().is_success(), "{what}: {}", resp.status());
        assert_eq!(
            detail(&app, &id).await["name"],
            hidden,
            "a {what} write invalidates"
        );
    }
    let d = detail(&app, &id).await;
    assert_eq!(d["skus"][0]["price"], "13.00");
    assert_eq!(d["skus"][0]["available"], 7);
    assert_eq!(d["images"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_reservation_refreshes_the_availability_readers_see() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let (id, sku) = app.listed(&seller, "Lamp", "40.00", 5).await;
    assert_eq!(detail(&app, &id).await["skus"][0]["available"], 5);
    app.handle(&order_created(Uuid::now_v7(), &[(&sku, 2, "40.00")]))
        .await;
    assert_eq!(detail(&app, &id).await["skus"][0]["available"], 3);
}

#[tokio::test]
async fn visibility_is_checked_on_cached_entries_too() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let p = app.product(&seller, json!({"name": "Draft lamp"})).await;
    let id = p["id"].as_str().unwrap();
    // The owner's read fills the cache with the draft; the public still cannot see it.
    let resp = app
        .get_auth(&format!("/api/v1/products/{id}"), &seller.token)
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(app.cached(id).await, "the owner's read cached the draft");
    assert_eq!(
        app.get(&format!("/api/v1/products/{id}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(
        app.cached(id).await,
        "the entry is still there: the 404 was decided on it"
    );
}

#[tokio::test]
async fn with_redis_unreachable_reads_and_writes_still_work() {
    let app = TestApp::spawn_with(|c| {
        c.common.redis_url = shared::config::Secret::new("redis://127.0.0.1:1");
    })
    .await;
    let seller = Caller::seller();
    let (id, _) = app.listed(&seller, "Offline", "9.99", 3).await;
    assert_eq!(detail(&app, &id).await["name"], "Offline");
    rename_in_db(&app, &id, "Fresh").await;
    assert_eq!(
        detail(&app, &id).await["name"],
        "Fresh",
        "every read goes to Postgres"
    );
    let body: Value = app
        .get("/api/v1/products/slug/offline")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["id"], id);
    let ready = app.get("/health/ready").await;
    assert_eq!(
        ready.status(),
        StatusCode::OK,
        "the cache is not a readiness dependency"
    );
}

/// The SKUs of a detail as `(available, stock_quantity, reserved_quantity)`, `None` for a counter
/// the body does not carry.
fn sku_counters(d: &Value) -> (i64, Option<i64>, Option<i64>) {
    let s = &d["skus"][0];
    (
        s["available"].as_i64().unwrap(),
        s.get("stock_quantity").map(|v| v.as_i64().unwrap()),
        s.get("reserved_quantity").map(|v| v.as_i64().unwrap()),
    )
}

async fn detail_as(app: &TestApp, path: &str, token: Option<&str>) -> Value {
    let resp = match token {
        Some(t) => app.get_auth(path, t).await,
        None => app.get(path).await,
    };
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.json().await.unwrap()
}

#[tokio::test]
async fn the_public_sees_availability_but_not_the_stock_counters_cached_or_not() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let buyer = Caller::buyer();
    let (id, sku) = app.listed(&seller, "Vase", "30.00", 5).await;
    app.handle(&order_created(Uuid::now_v7(), &[(&sku, 2, "30.00")]))
        .await;
    let slug = detail(&app, &id).await["slug"].as_str().unwrap().to_owned();
    let by_id = format!("/api/v1/products/{id}");
    let by_slug = format!("/api/v1/products/slug/{slug}");
    let public = (3, None, None);
    let full = (3, Some(5), Some(2));

    // Uncached: an anonymous read misses the cache and fills it.
    app.state.cache.invalidate(&[id.parse().unwrap()]).await;
    assert!(!app.cached(&id).await);
    assert_eq!(sku_counters(&detail_as(&app, &by_id, None).await), public);
    assert!(app.cached(&id).await, "the public read filled the cache");
    // Cached: the entry the public filled still gives the owner and an admin their counters.
    assert_eq!(
        sku_counters(&detail_as(&app, &by_id, Some(&seller.token)).await),
        full
    );
    assert_eq!(
        sku_counters(&detail_as(&app, &by_id, Some(&app.admin)).await),
        full
    );

    // Uncached again, filled by the owner this time: the entry holds the counters, and neither
    // an anonymous reader nor another signed-in user gets them from it, by id or by slug.
    app.state.cache.invalidate(&[id.parse().unwrap()]).await;
    assert!(!app.cached(&id).await);
    assert_eq!(
        sku_counters(&detail_as(&app, &by_id, Some(&seller.token)).await),
        full
    );
    assert!(app.cached(&id).await, "the owner's read filled the cache");
    for path in [&by_id, &by_slug] {
        assert_eq!(
            sku_counters(&detail_as(&app, path, None).await),
            public,
            "{path}"
        );
        assert_eq!(
            sku_counters(&detail_as(&app, path, Some(&buyer.token)).await),
            public,
            "{path}"
        );
    }
    assert_eq!(
        sku_counters(&detail_as(&app, &by_slug, Some(&seller.token)).await),
        full
    );
}

#[tokio::test]
async fn the_public_detail_carries_an_etag_that_answers_304_until_the_product_changes() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let buyer = Caller::buyer();
    let (id, _) = app.listed(&seller, "Kettle", "25.00", 4).await;
    let path = format!("/api/v1/products/{id}");
    let first = app.get(&path).await;
    assert_eq!(first.status(), StatusCode::OK);
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert_eq!(first.headers()["cache-control"], "no-cache");
    let varies: Vec<String> = first
        .headers()
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        varies.iter().any(|v| v.contains("Authorization")),
        "{varies:?}"
    );
    let body = first.bytes().await.unwrap();

    // The owner's view (with stock counters) is theirs alone: no tag, no shared caching.
    let own = app.get_auth(&path, &seller.token).await;
    assert_eq!(own.status(), StatusCode::OK);
    assert!(own.headers().get("etag").is_none());
    assert_eq!(own.headers()["cache-control"], "private, no-cache");
    // A buyer shares the public view: the same bytes under the same tag.
    let as_buyer = app.get_auth(&path, &buyer.token).await;
    assert_eq!(as_buyer.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(as_buyer.bytes().await.unwrap(), body);

    let conditional = |tag: String| {
        let url = app.url(&path);
        let client = app.client.clone();
        async move {
            client
                .get(url)
                .header("if-none-match", tag)
                .send()
                .await
                .unwrap()
        }
    };
    let unchanged = conditional(etag.clone()).await;
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(unchanged.headers()["etag"].to_str().unwrap(), etag);
    assert!(unchanged.bytes().await.unwrap().is_empty());
    // Weak comparison and lists of tags, as clients and proxies send them.
    let listed = conditional(format!("\"other\", W/{etag}")).await;
    assert_eq!(listed.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(
        conditional("\"other\"".into()).await.status(),
        StatusCode::OK
    );

    let resp = app
        .patch_auth(&path, &seller.token, json!({"name": "Steel kettle"}))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let changed = conditional(etag.clone()).await;
    assert_eq!(
        changed.status(),
        StatusCode::OK,
        "the old tag no longer matches"
    );
    let new_tag = changed.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(new_tag, etag);
    let d: Value = changed.json().await.unwrap();
    assert_eq!(d["name"], "Steel kettle");
    assert_eq!(
        conditional(new_tag).await.status(),
        StatusCode::NOT_MODIFIED
    );
}

/// The names on a listing page.
async fn listed_names(app: &TestApp, query: &str) -> Vec<String> {
    let resp = app.get(&format!("/api/v1/products?{query}")).await;
    assert_eq!(resp.status(), StatusCode::OK, "{query}");
    let page: Value = resp.json().await.unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The fields of the cached listing pages in Redis.
async fn cached_pages(app: &TestApp) -> Vec<String> {
    let key = format!("{}catalog:lists", app.state.config.common.redis_prefix);
    let client = redis::Client::open(shared::test_utils::redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("HKEYS")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn first_listing_pages_are_cached_until_a_product_write_or_a_category_move() {
    let app = TestApp::spawn().await;
    let seller = Caller::seller();
    let shop = app.admin_category("Shop", None).await;
    let kitchen = app.admin_category("Kitchen", Some(&shop)).await;
    let p = app
        .product(&seller, json!({"name": "Teapot", "category_id": kitchen}))
        .await;
    let id = p["id"].as_str().unwrap().to_owned();
    app.sku(&seller, &id, "TEAPOT-1", "20.00", 3).await;
    app.activate(&seller, &id).await;

    assert_eq!(listed_names(&app, "limit=20").await, ["Teapot"]);
    assert_eq!(
        listed_names(&app, &format!("category_id={shop}")).await,
        ["Teapot"]
    );
    rename_in_db(&app, &id, "Sneaky").await;
    assert_eq!(
        listed_names(&app, "limit=20").await,
        ["Teapot"],
        "the first page came from the cache"
    );
    // A search is never cached: it reads Postgres every time.
    assert_eq!(listed_names(&app, "q=Sneaky").await, ["Sneaky"]);

    // A product write drops every cached page.
    let resp = app
        .patch_auth(
            &format!("/api/v1/products/{id}"),
            &seller.token,
            json!({"description": "porcelain"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(listed_names(&app, "limit=20").await, ["Sneaky"]);

    // The shop's page is cached again; moving Kitchen out of Shop must empty it at once.
    assert_eq!(
        listed_names(&app, &format!("category_id={shop}")).await,
        ["Sneaky"]
    );
    let resp = app
        .patch_auth(
            &format!("/api/v1/categories/{kitchen}"),
            &app.admin,
            json!({"parent_id": null}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK, "moving the category");
    assert!(listed_names(&app, &format!("category_id={shop}"))
        .await
        .is_empty());

    // A made-up category id answers an empty page and is not kept.
    let made_up = Uuid::now_v7();
    assert!(listed_names(&app, &format!("category_id={made_up}"))
        .await
        .is_empty());
    assert_eq!(listed_names(&app, "limit=20").await, ["Sneaky"]);
    let pages = cached_pages(&app).await;
    assert!(
        !pages.iter().any(|f| f.contains(&made_up.to_string())),
        "{pages:?}"
    );
    assert!(!pages.is_empty(), "the other pages were cached: {pages:?}");
}
