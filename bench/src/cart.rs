//! The `cart` scenario: add-to-cart (a catalog lookup, an atomic Lua update and the whole cart
//! read back) and get-cart, one fresh buyer per worker, against the running stack. SKUs are the
//! catalog scenario's bench products.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use serde_json::{json, Value};

use crate::{load, load_timed, Options, Row};

/// Distinct SKUs a worker cycles through (under the 50-line limit).
const LINES: usize = 40;

pub async fn run(o: &Options, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let (_, _, skus) = crate::catalog::fixtures(&client, o).await?;
    anyhow::ensure!(skus.len() >= LINES, "not enough bench SKUs");
    let skus = Arc::new(skus[..LINES].to_vec());
    let identity = o.identity.trim_end_matches('/').to_owned();
    let cart = Arc::new(o.cart.trim_end_matches('/').to_owned());

    let run = uuid::Uuid::now_v7().simple().to_string();
    let password = "Bench-passw0rd!";
    let mut tokens = Vec::new();
    for w in 0..o.concurrency {
        let username = format!("cart{}_{w}", &run[20..]);
        let resp = client
            .post(format!("{identity}/api/v1/users/register"))
            .json(
                &json!({"username": username, "email": format!("{username}@bench.invalid"),
                          "password": password, "role": "BUYER"}),
            )
            .send()
            .await
            .context("identity is not reachable: is the stack up (make up)?")?;
        anyhow::ensure!(
            resp.status().is_success(),
            "register: {}",
            resp.text().await?
        );
        let login: Value = client
            .post(format!("{identity}/api/v1/users/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await?
            .json()
            .await?;
        tokens.push(
            login["access_token"]
                .as_str()
                .context("login answered no token")?
                .to_owned(),
        );
    }
    let tokens = Arc::new(tokens);
    let counters: Arc<Vec<AtomicUsize>> =
        Arc::new((0..o.concurrency).map(|_| AtomicUsize::new(0)).collect());

    let (c, b, s, t, n) = (
        client.clone(),
        cart.clone(),
        skus.clone(),
        tokens.clone(),
        counters.clone(),
    );
    rows.push(
        load_timed(
            "cart: POST /cart/items",
            o.concurrency,
            o.seconds,
            move |w| {
                let (c, b, s, t, n) = (c.clone(), b.clone(), s.clone(), t.clone(), n.clone());
                async move {
                    let i = n[w].fetch_add(1, Ordering::Relaxed);
                    // Every line reaches 99 after 99 rounds: empty the cart first (untimed).
                    if i > 0 && i % (LINES * 90) == 0 {
                        let _ = c
                            .delete(format!("{b}/api/v1/cart"))
                            .bearer_auth(&t[w])
                            .send()
                            .await;
                    }
                    let started = Instant::now();
                    let ok = c
                        .post(format!("{b}/api/v1/cart/items"))
                        .bearer_auth(&t[w])
                        .json(&json!({"sku_id": s[i % LINES], "quantity": 1}))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    (ok, Some(started.elapsed()))
                }
            },
        )
        .await,
    );

    let (c, b, t) = (client.clone(), cart.clone(), tokens.clone());
    rows.push(
        load(
            "cart: GET /cart (up to 40 lines)",
            o.concurrency,
            o.seconds,
            move |w| {
                let (c, b, t) = (c.clone(), b.clone(), t.clone());
                async move {
                    c.get(format!("{b}/api/v1/cart"))
                        .bearer_auth(&t[w])
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success())
                }
            },
        )
        .await,
    );
    Ok(())
}
