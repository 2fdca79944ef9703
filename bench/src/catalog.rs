//! The `catalog` scenario: product detail from the cache and from Postgres, a filtered listing,
//! a text search and the batch SKU lookup, against the running stack. It creates its own
//! products once (slugs `bench-p-N` in category `bench`) as the seeded admin and seller1.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use serde_json::{json, Value};

use crate::{load, load_open, load_timed, Options, Row};

const PRODUCTS: usize = 300;

async fn login(client: &reqwest::Client, identity: &str, user: &str) -> anyhow::Result<String> {
    let password =
        std::env::var("KOUPANG_SEED_PASSWORD").unwrap_or_else(|_| "Koupang-dem0!".into());
    let body: Value = client
        .post(format!("{identity}/api/v1/users/login"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .context("identity is not reachable: is the stack up (make up)?")?
        .json()
        .await?;
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("cannot log in as {user} (seeded by make up): {body}"))
}

async fn send(req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
    let resp = req.send().await?;
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "{status}: {body}");
    Ok(body)
}

/// The bench category and products, made once: (category id, product ids, sku ids).
pub async fn fixtures(
    client: &reqwest::Client,
    o: &Options,
) -> anyhow::Result<(String, Vec<String>, Vec<String>)> {
    let base = o.catalog.trim_end_matches('/');
    let identity = o.identity.trim_end_matches('/');
    let admin = login(client, identity, "admin").await?;
    let seller = login(client, identity, "seller1").await?;
    let mut category = None;
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{base}/api/v1/categories?limit=100&cursor={c}"),
            None => format!("{base}/api/v1/categories?limit=100"),
        };
        let page = send(client.get(url)).await?;
        if let Some(c) = page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["slug"] == "bench")
        {
            category = c["id"].as_str().map(str::to_owned);
        }
        match page["next_cursor"].as_str() {
            Some(c) if category.is_none() => cursor = Some(c.to_owned()),
            _ => break,
        }
    }
    let category = match category {
        Some(c) => c,
        None => send(
            client
                .post(format!("{base}/api/v1/categories"))
                .bearer_auth(&admin)
                .json(&json!({"name": "Bench", "slug": "bench"})),
        )
        .await?["id"]
            .as_str()
            .context("category id")?
            .to_owned(),
    };
    let mut products = Vec::new();
    let mut skus = Vec::new();
    for i in 0..PRODUCTS {
        let slug = format!("bench-p-{i}");
        let existing = client
            .get(format!("{base}/api/v1/products/slug/{slug}"))
            .send()
            .await?;
        let detail: Value = if existing.status().is_success() {
            existing.json().await?
        } else {
            let p = send(
                client
                    .post(format!("{base}/api/v1/products"))
                    .bearer_auth(&seller)
                    .json(
                        &json!({"name": format!("Bench product {i} kettle"), "slug": slug,
                                  "description": "a product made by the benchmark",
                                  "category_id": category}),
                    ),
            )
            .await?;
            let id = p["id"].as_str().context("product id")?.to_owned();
            for (n, price) in [(0, 10 + i % 90), (1, 20 + i % 90)] {
                send(
                    client
                        .post(format!("{base}/api/v1/products/{id}/skus"))
                        .bearer_auth(&seller)
                        .json(&json!({"sku_code": format!("BENCH-{i}-{n}"), "price": format!("{price}.99"),
                                      "currency": "USD", "stock_quantity": 1000,
                                      "attributes": {"variant": n}})),
                )
                .await?;
            }
            send(
                client
                    .post(format!("{base}/api/v1/products/{id}/images"))
                    .bearer_auth(&seller)
                    .json(&json!({"url": format!("https://images.koupang.local/bench/{i}.jpg")})),
            )
            .await?;
            send(
                client
                    .patch(format!("{base}/api/v1/products/{id}"))
                    .bearer_auth(&seller)
                    .json(&json!({"status": "active"})),
            )
            .await?
        };
        products.push(detail["id"].as_str().context("id")?.to_owned());
        for s in detail["skus"].as_array().into_iter().flatten() {
            skus.push(s["id"].as_str().context("sku id")?.to_owned());
        }
    }
    Ok((category, products, skus))
}

pub async fn run(o: &Options, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let (category, products, skus) = fixtures(&client, o).await?;
    let base = Arc::new(o.catalog.trim_end_matches('/').to_owned());
    let products = Arc::new(products);
    let next = Arc::new(AtomicUsize::new(0));

    // Warm the cache, then read round-robin: every read is a hit.
    for p in products.iter() {
        client
            .get(format!("{base}/api/v1/products/{p}"))
            .send()
            .await?;
    }
    let urls: Arc<Vec<Arc<String>>> = Arc::new(
        products
            .iter()
            .map(|p| Arc::new(format!("{base}/api/v1/products/{p}")))
            .collect(),
    );
    let (c, u) = (client.clone(), urls.clone());
    rows.push(
        load_open(
            "catalog: GET /products/{id} (cached)",
            o.http_rate,
            o.seconds,
            move |i| crate::get_ok(c.clone(), u[i as usize % u.len()].clone(), None),
        )
        .await,
    );
    let (c, b, p, n) = (client.clone(), base.clone(), products.clone(), next.clone());
    rows.push(
        load(
            "catalog: GET /products/{id} (cached)",
            o.concurrency,
            o.seconds,
            move |_| {
                let (c, b, p, n) = (c.clone(), b.clone(), p.clone(), n.clone());
                async move {
                    let id = &p[n.fetch_add(1, Ordering::Relaxed) % p.len()];
                    c.get(format!("{b}/api/v1/products/{id}"))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success())
                }
            },
        )
        .await,
    );

    // Drop the entry before each (untimed), so every timed read goes to Postgres and refills.
    let redis = redis::Client::open(o.redis_url.as_str())?;
    let conn = redis::aio::ConnectionManager::new(redis).await?;
    let prefix = Arc::new(format!("{}catalog:", o.redis_prefix));
    let (c, b, p, n) = (client.clone(), base.clone(), products.clone(), next.clone());
    rows.push(
        load_timed(
            "catalog: GET /products/{id} (uncached)",
            o.concurrency,
            o.seconds,
            move |_| {
                let (c, b, p, n, mut conn, prefix) = (
                    c.clone(),
                    b.clone(),
                    p.clone(),
                    n.clone(),
                    conn.clone(),
                    prefix.clone(),
                );
                async move {
                    let id = &p[n.fetch_add(1, Ordering::Relaxed) % p.len()];
                    // The full detail and the public view's bytes (catalog/src/cache.rs).
                    let dropped: Result<(), _> = redis::cmd("DEL")
                        .arg(format!("{prefix}product:{id}"))
                        .arg(format!("{prefix}public:{id}"))
                        .query_async(&mut conn)
                        .await;
                    if dropped.is_err() {
                        return (false, None);
                    }
                    let t = Instant::now();
                    let ok = c
                        .get(format!("{b}/api/v1/products/{id}"))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    (ok, Some(t.elapsed()))
                }
            },
        )
        .await,
    );

    let listing = format!(
        "{base}/api/v1/products?category_id={category}&min_price=20&max_price=80&sort=price_asc&limit=20"
    );
    let search = format!("{base}/api/v1/products?q=kettle&sort=newest&limit=20");
    let batch = format!(
        "{base}/api/v1/skus?ids={}",
        skus.iter().take(20).cloned().collect::<Vec<_>>().join(",")
    );
    for (name, url) in [
        (
            "catalog: GET /products?limit=20 (the public first page)",
            format!("{base}/api/v1/products?limit=20"),
        ),
        (
            "catalog: GET /products?category&price&sort=price_asc",
            listing,
        ),
        ("catalog: GET /products?q=kettle", search),
        ("catalog: GET /skus?ids= (20 SKUs)", batch),
    ] {
        rows.push(get_url(&client, name, url, o).await);
    }
    Ok(())
}

/// `GET url` from every worker, for `o.seconds`.
async fn get_url(client: &reqwest::Client, name: &str, url: String, o: &Options) -> Row {
    let (c, url) = (client.clone(), Arc::new(url));
    load(name, o.concurrency, o.seconds, move |_| {
        let (c, url) = (c.clone(), url.clone());
        async move {
            c.get(url.as_str())
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await
}
