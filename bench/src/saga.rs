//! The `saga` scenario (issue 11): whole orders through the running stack, from
//! `POST /orders` to confirmed + captured, the way a buyer would see them: closed loops at
//! concurrency 1, 16 and 64, then an open loop at a fixed arrival rate whose latencies count from
//! each order's intended send time (no coordinated omission). Per run: confirmed orders/s, the
//! place→confirmed and place→captured percentiles, cancelled and unfinished orders, the outbox
//! rows still unpublished when the run ends, each process's CPU and peak RSS, and where the time
//! went, hop by hop, from the timestamps the services themselves wrote (order history, outbox,
//! inbox, payment attempts).
//!
//! The bench sees an order finish by polling `GET /orders/{id}` (every `--poll-ms`, 5 ms by
//! default): those reads load the order service too, and the output says how many it sent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::procs::Snapshot;
use crate::stats::{hist, ms_of};
use crate::Options;

/// Bench SKUs: one product, `SKUS` SKUs `bench-saga-sku-N`, made once and reused.
const SKUS: usize = 32;
const PRODUCT_SLUG: &str = "bench-saga";
const SKU_PREFIX: &str = "bench-saga-sku-";
const STOCK: i64 = 10_000_000;
const PRICE: &str = "12.50";
/// An order not finished after this long is counted as unfinished.
const ORDER_TIMEOUT: Duration = Duration::from_secs(30);
/// Databases whose outbox backlog is reported.
const OUTBOX_DBS: [&str; 3] = ["catalog", "orders", "payment"];

/// How one order ended, with its latencies measured from its start (the actual send time in a
/// closed loop, the intended one in the open loop).
enum End {
    Done {
        id: Uuid,
        confirmed: Duration,
        captured: Duration,
        place: Duration,
    },
    Cancelled(Uuid),
    Unfinished(Uuid),
    /// Not placed: why (the status, or the client's error).
    Failed(String),
}

struct Ctx {
    client: reqwest::Client,
    order: String,
    tokens: [String; 2],
    skus: Vec<String>,
    poll: Duration,
    polls: AtomicU64,
    run_dir: std::path::PathBuf,
    dbs: HashMap<&'static str, PgPool>,
    brokers: String,
}

pub async fn run(o: &Options) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(30))
        .build()?;
    let identity = o.identity.trim_end_matches('/');
    let buyer1 = login(&client, identity, "buyer1").await?;
    let buyer2 = login(&client, identity, "buyer2").await?;
    let seller = login(&client, identity, "seller1").await?;
    let skus = fixtures(&client, o.catalog.trim_end_matches('/'), &seller).await?;
    let mut dbs = HashMap::new();
    let base = o
        .database_url
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .context("--database-url has no database name")?;
    for db in ["catalog", "orders", "payment"] {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&format!("{base}/{db}"))
            .await
            .with_context(|| format!("cannot connect to {base}/{db}"))?;
        dbs.insert(db, pool);
    }
    let ctx = Arc::new(Ctx {
        client,
        order: o.order.trim_end_matches('/').to_owned(),
        tokens: [buyer1, buyer2],
        skus,
        poll: Duration::from_millis(o.poll_ms),
        polls: AtomicU64::new(0),
        run_dir: o.run_dir.clone().into(),
        dbs,
        brokers: o.brokers.clone(),
    });

    println!(
        "saga: {} SKUs, polling GET /orders/{{id}} every {} ms per in-flight order \
         (the polling is load on the order service too: its count is printed per run)",
        ctx.skus.len(),
        o.poll_ms
    );
    let mut rows = Vec::new();
    // `--concurrency 0` runs the open loop only.
    for &c in o.saga_concurrency.iter().filter(|c| **c > 0) {
        let name = format!("closed loop, concurrency {c}");
        let before = Snapshot::take(&ctx.run_dir);
        let started = Instant::now();
        let ends = closed_loop(&ctx, c, o.saga_seconds).await;
        rows.push(report(&ctx, name, started, before, ends).await?);
    }
    if o.saga_rate > 0 {
        let name = format!("open loop, {}/s", o.saga_rate);
        let before = Snapshot::take(&ctx.run_dir);
        let started = Instant::now();
        let ends = open_loop(&ctx, o.saga_rate, o.open_seconds).await;
        rows.push(report(&ctx, name, started, before, ends).await?);
    }
    println!("\n## saga: summary (latencies from the order's send time, intended send time in the open loop)");
    println!(
        "| run | orders | confirmed/s | confirmed p50 / p90 / p99 / max ms | captured p50 / p99 ms | cancelled | unfinished | not placed | GET polls/s |"
    );
    println!("|---|---:|---:|---|---|---:|---:|---:|---:|");
    for r in &rows {
        println!("{}", r.line);
    }
    println!("\n| run | placed→reserved | reserved→authorized | authorized→captured | placed→captured (medians, ms, from the order's history) |");
    println!("|---|---:|---:|---:|---:|");
    for r in &rows {
        println!("{}", r.hops);
    }
    // The invariants once the last orders have settled (the auditor of the e2e tests).
    let db = |name: &str| ctx.dbs.get(name).cloned().context("a bench database");
    let target = auditor::Target {
        catalog_db: db("catalog")?,
        order_db: db("orders")?,
        payment_db: db("payment")?,
        brokers: ctx.brokers.clone(),
        topic_prefix: String::new(),
    };
    let problems = auditor::audit_when_quiet(&target, Duration::from_secs(60)).await;
    if problems.is_empty() {
        println!("\naudit after the runs: clean (orders settled, stock conserved, ledger balanced, outboxes drained, no dead letters)");
    } else {
        println!(
            "\naudit after the runs: {} problems (first 10):",
            problems.len()
        );
        for p in problems.iter().take(10) {
            println!("- {p}");
        }
    }
    Ok(())
}

/// The saga's consumer groups and the topics they read (their services' configs).
const GROUPS: [(&str, &[&str]); 4] = [
    ("catalog-inventory", &["orders.events"]),
    ("cart-orders", &["orders.events"]),
    ("order-saga", &["catalog.events", "payments.events"]),
    ("payment-saga", &["orders.events"]),
];

/// Per consumer group, the records on its topics past its committed offsets (`None`: the broker
/// did not say). Asked without joining the group, so the services' members are not disturbed.
async fn consumer_lag(brokers: &str) -> Vec<(&'static str, Option<i64>)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let brokers = brokers.to_owned();
    tokio::task::spawn_blocking(move || {
        let timeout = Duration::from_secs(5);
        GROUPS
            .iter()
            .map(|(group, topics)| {
                let lag = || -> anyhow::Result<i64> {
                    let consumer: BaseConsumer =
                        shared::kafka::consumer_config(&brokers, group).create()?;
                    let mut tpl = rdkafka::TopicPartitionList::new();
                    for topic in *topics {
                        let meta = consumer.fetch_metadata(Some(topic), timeout)?;
                        for t in meta.topics() {
                            for p in t.partitions() {
                                tpl.add_partition(topic, p.id());
                            }
                        }
                    }
                    let committed = consumer.committed_offsets(tpl, timeout)?;
                    let mut lag = 0;
                    for e in committed.elements() {
                        let (low, high) =
                            consumer.fetch_watermarks(e.topic(), e.partition(), timeout)?;
                        let at = match e.offset() {
                            rdkafka::Offset::Offset(o) => o,
                            _ => low,
                        };
                        lag += (high - at).max(0);
                    }
                    Ok(lag)
                };
                (*group, lag().ok())
            })
            .collect()
    })
    .await
    .unwrap_or_default()
}

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

/// The bench product and its SKUs, made once by seller1 (missing SKUs are added on a later run).
async fn fixtures(
    client: &reqwest::Client,
    catalog: &str,
    seller: &str,
) -> anyhow::Result<Vec<String>> {
    let existing = client
        .get(format!("{catalog}/api/v1/products/slug/{PRODUCT_SLUG}"))
        .bearer_auth(seller)
        .send()
        .await?;
    let (id, mut detail) = if existing.status().is_success() {
        let d: Value = existing.json().await?;
        (d["id"].as_str().context("product id")?.to_owned(), d)
    } else {
        let p = send(
            client
                .post(format!("{catalog}/api/v1/products"))
                .bearer_auth(seller)
                .json(&json!({"name": "Bench saga product", "slug": PRODUCT_SLUG,
                              "description": "SKUs the saga benchmark orders"})),
        )
        .await?;
        (p["id"].as_str().context("product id")?.to_owned(), p)
    };
    let code_of = |s: &Value| s["sku_code"].as_str().unwrap_or_default().to_owned();
    let have: Vec<String> = detail["skus"]
        .as_array()
        .into_iter()
        .flatten()
        .map(code_of)
        .collect();
    let mut created = 0;
    for i in 0..SKUS {
        let code = format!("{SKU_PREFIX}{i}");
        if have.iter().any(|c| c.eq_ignore_ascii_case(&code)) {
            continue;
        }
        send(
            client
                .post(format!("{catalog}/api/v1/products/{id}/skus"))
                .bearer_auth(seller)
                .json(&json!({"sku_code": code, "price": PRICE, "currency": "USD",
                              "stock_quantity": STOCK})),
        )
        .await?;
        created += 1;
    }
    if detail["images"].as_array().is_none_or(|a| a.is_empty()) {
        send(
            client
                .post(format!("{catalog}/api/v1/products/{id}/images"))
                .bearer_auth(seller)
                .json(&json!({"url": "https://images.koupang.local/bench/saga.jpg"})),
        )
        .await?;
    }
    if detail["status"] != "active" {
        send(
            client
                .patch(format!("{catalog}/api/v1/products/{id}"))
                .bearer_auth(seller)
                .json(&json!({"status": "active"})),
        )
        .await?;
    }
    if created > 0 || detail["status"] != "active" {
        detail = send(
            client
                .get(format!("{catalog}/api/v1/products/{id}"))
                .bearer_auth(seller),
        )
        .await?;
    }
    let skus: Vec<String> = detail["skus"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| {
            s["sku_code"]
                .as_str()
                .is_some_and(|c| c.to_ascii_lowercase().starts_with(SKU_PREFIX))
        })
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect();
    anyhow::ensure!(
        skus.len() == SKUS,
        "expected {SKUS} bench SKUs on {PRODUCT_SLUG}, found {}",
        skus.len()
    );
    if let Some(low) = detail["skus"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["available_quantity"].as_i64())
        .min()
        .filter(|a| *a < 100_000)
    {
        println!("saga: warning: a bench SKU has only {low} units left");
    }
    Ok(skus)
}

/// A small xorshift: which SKU to order (no need for a random crate).
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Place one order and poll it until it is confirmed and captured, cancelled, or the timeout;
/// latencies count from `start`.
async fn order_once(ctx: &Ctx, i: u64, random: u64, start: Instant) -> End {
    // Buyers alternate order by order; the SKU is random.
    let token = &ctx.tokens[(i % 2) as usize];
    let sku = &ctx.skus[(random % ctx.skus.len() as u64) as usize];
    let body = json!({
        "items": [{"sku_id": sku, "quantity": 1}],
        "shipping_address": {"name": "Bench Buyer", "line1": "1 Bench St", "city": "Seoul",
                             "postal_code": "04524", "country": "KR"},
        "payment_method": "tok_visa",
    });
    let placed = ctx
        .client
        .post(format!("{}/api/v1/orders", ctx.order))
        .bearer_auth(token)
        .header("Idempotency-Key", Uuid::now_v7().to_string())
        .json(&body)
        .send()
        .await;
    let id = match placed {
        Ok(r) if r.status().is_success() => match r.json::<Value>().await {
            Ok(v) => match v["id"].as_str().and_then(|s| s.parse::<Uuid>().ok()) {
                Some(id) => id,
                None => return End::Failed("answer without an id".into()),
            },
            Err(_) => return End::Failed("unreadable answer".into()),
        },
        Ok(r) => {
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let code = body["code"]
                .as_str()
                .or(body["error"]["code"].as_str())
                .unwrap_or_default()
                .to_owned();
            return End::Failed(format!("{} {code}", status.as_u16()));
        }
        Err(e) if e.is_timeout() => return End::Failed("client timeout (30 s)".into()),
        Err(e) if e.is_connect() => return End::Failed("connect error".into()),
        Err(_) => return End::Failed("request error".into()),
    };
    let place = start.elapsed();
    let url = format!("{}/api/v1/orders/{id}", ctx.order);
    let mut confirmed = None;
    loop {
        if start.elapsed() > ORDER_TIMEOUT {
            return End::Unfinished(id);
        }
        tokio::time::sleep(ctx.poll).await;
        ctx.polls.fetch_add(1, Ordering::Relaxed);
        let Ok(resp) = ctx.client.get(&url).bearer_auth(token).send().await else {
            continue;
        };
        let Ok(v) = resp.json::<Value>().await else {
            continue;
        };
        match (v["status"].as_str(), v["payment_status"].as_str()) {
            (Some("cancelled"), _) => return End::Cancelled(id),
            (Some("confirmed"), p) => {
                let at = *confirmed.get_or_insert_with(|| start.elapsed());
                if p == Some("captured") {
                    return End::Done {
                        id,
                        confirmed: at,
                        captured: start.elapsed(),
                        place,
                    };
                }
            }
            _ => {}
        }
    }
}

async fn closed_loop(ctx: &Arc<Ctx>, concurrency: usize, seconds: u64) -> Vec<End> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ ((w as u64 + 1) << 32);
                let mut local = Vec::new();
                let mut i = w as u64;
                while Instant::now() < deadline {
                    let random = next_random(&mut state);
                    local.push(order_once(&ctx, i, random, Instant::now()).await);
                    i += 1;
                }
                local
            })
        })
        .collect();
    let mut ends = Vec::new();
    for w in workers {
        ends.extend(w.await.unwrap_or_default());
    }
    ends
}

/// Orders sent at `rate` per second for `seconds`, each at its intended time whatever earlier
/// ones do; latencies count from the intended time.
async fn open_loop(ctx: &Arc<Ctx>, rate: u32, seconds: u64) -> Vec<End> {
    let total = u64::from(rate) * seconds;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let begin = tokio::time::Instant::now();
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let intended = begin + interval.mul_f64(i as f64);
        tokio::time::sleep_until(intended).await;
        let random = next_random(&mut state);
        let ctx = ctx.clone();
        tasks.push(tokio::spawn(async move {
            order_once(&ctx, i, random, intended.into_std()).await
        }));
    }
    let mut ends = Vec::with_capacity(tasks.len());
    for t in tasks {
        ends.push(
            t.await
                .unwrap_or_else(|_| End::Failed("task panicked".into())),
        );
    }
    ends
}

struct Reported {
    line: String,
    hops: String,
}

async fn report(
    ctx: &Ctx,
    name: String,
    started: Instant,
    before: Snapshot,
    ends: Vec<End>,
) -> anyhow::Result<Reported> {
    let after = Snapshot::take(&ctx.run_dir);
    let wall = started.elapsed().as_secs_f64();
    let backlog = backlog(ctx).await;
    let polls = ctx.polls.swap(0, Ordering::Relaxed);
    let (mut confirmed, mut captured, mut place) = (hist(), hist(), hist());
    let (mut cancelled, mut unfinished, mut failed) = (0, 0, 0);
    let mut done_ids = Vec::new();
    let mut stuck = Vec::new();
    let mut why_failed: HashMap<&str, usize> = HashMap::new();
    for e in &ends {
        match e {
            End::Done {
                id,
                confirmed: c,
                captured: p,
                place: pl,
            } => {
                let us = |d: &Duration| (d.as_micros() as u64).max(1);
                let _ = confirmed.record(us(c));
                let _ = captured.record(us(p));
                let _ = place.record(us(pl));
                done_ids.push(*id);
            }
            End::Cancelled(id) => {
                cancelled += 1;
                stuck.push(format!("{id} cancelled"));
            }
            End::Unfinished(id) => {
                unfinished += 1;
                stuck.push(format!("{id} unfinished"));
            }
            End::Failed(why) => {
                failed += 1;
                *why_failed.entry(why.as_str()).or_insert(0) += 1;
            }
        }
    }
    let rate = done_ids.len() as f64 / wall;
    println!("\n## saga: {name}");
    println!(
        "{} orders in {wall:.1} s: {} confirmed+captured ({rate:.1}/s), {cancelled} cancelled, {unfinished} unfinished (>{} s), {failed} not placed",
        ends.len(),
        done_ids.len(),
        ORDER_TIMEOUT.as_secs()
    );
    println!(
        "place→confirmed ms p50 {:.1} p90 {:.1} p99 {:.1} max {:.1}; place→captured p50 {:.1} p99 {:.1}; POST /orders p50 {:.1} p99 {:.1}",
        ms_of(&confirmed, 0.5),
        ms_of(&confirmed, 0.9),
        ms_of(&confirmed, 0.99),
        ms_of(&confirmed, 1.0),
        ms_of(&captured, 0.5),
        ms_of(&captured, 0.99),
        ms_of(&place, 0.5),
        ms_of(&place, 0.99),
    );
    if !why_failed.is_empty() {
        let mut why: Vec<_> = why_failed.into_iter().collect();
        why.sort_by_key(|w| std::cmp::Reverse(w.1));
        let why: Vec<String> = why.iter().map(|(w, n)| format!("{n} × {w}")).collect();
        println!("not placed: {}", why.join(", "));
    }
    if !stuck.is_empty() {
        println!(
            "not confirmed (first 3): {}",
            stuck[..stuck.len().min(3)].join(", ")
        );
    }
    println!(
        "polling: {polls} GET /orders/{{id}} ({:.0}/s), load the order service carries on top of the saga",
        polls as f64 / wall
    );
    println!(
        "outbox rows unpublished at the end: {}",
        backlog
            .iter()
            .map(|(db, n)| match n {
                Some(n) => format!("{db} {n}"),
                None => format!("{db} ?"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "consumer lag at the end (records past each group's committed offsets): {}",
        consumer_lag(&ctx.brokers)
            .await
            .iter()
            .map(|(g, n)| match n {
                Some(n) => format!("{g} {n}"),
                None => format!("{g} ?"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    crate::procs::print_table(&before, &after);
    let hops = hops(ctx, &done_ids).await?;
    let line = format!(
        "| {name} | {} | {rate:.1} | {:.0} / {:.0} / {:.0} / {:.0} | {:.0} / {:.0} | {cancelled} | {unfinished} | {failed} | {:.0} |",
        ends.len(),
        ms_of(&confirmed, 0.5),
        ms_of(&confirmed, 0.9),
        ms_of(&confirmed, 0.99),
        ms_of(&confirmed, 1.0),
        ms_of(&captured, 0.5),
        ms_of(&captured, 0.99),
        polls as f64 / wall,
    );
    Ok(Reported {
        line,
        hops: format!("| {name} | {hops} |"),
    })
}

async fn backlog(ctx: &Ctx) -> Vec<(&'static str, Option<i64>)> {
    let mut out = Vec::new();
    for db in OUTBOX_DBS {
        let n = match ctx.dbs.get(db) {
            Some(pool) => sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL",
            )
            .fetch_one(pool)
            .await
            .ok(),
            None => None,
        };
        out.push((db, n));
    }
    out
}

/// An outbox row of an order's event: order id, event id, written, published.
type OutboxRow = (String, Uuid, DateTime<Utc>, Option<DateTime<Utc>>);

/// Median and p90 of a list of milliseconds.
fn med_p90(v: &mut [f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9))
}

fn gap(a: Option<&DateTime<Utc>>, b: Option<&DateTime<Utc>>) -> Option<f64> {
    Some((*b? - *a?).num_microseconds()? as f64 / 1000.0)
}

/// Where the time went for the finished orders, from the services' own timestamps (one
/// Postgres clock): the order's history, each saga event's outbox row (written → published by
/// the relay) and its inbox row in the consumer (published → handled: broker and fetch), and the
/// payment worker's gateway calls. Prints the table; returns the history medians for the summary.
async fn hops(ctx: &Ctx, ids: &[Uuid]) -> anyhow::Result<String> {
    if ids.is_empty() {
        return Ok("– | – | – | –".into());
    }
    let pool = |db: &str| ctx.dbs.get(db).context("database pool");
    let text_ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();

    // The order's history: placed, reserved, authorized (confirmed), captured.
    let history: Vec<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT order_id, trigger, at FROM order_status_history
         WHERE order_id = ANY($1) AND applied
           AND trigger IN ('placed', 'InventoryReserved', 'PaymentAuthorized', 'PaymentCaptured')",
    )
    .bind(ids)
    .fetch_all(pool("orders")?)
    .await?;
    let mut per: HashMap<Uuid, HashMap<String, DateTime<Utc>>> = HashMap::new();
    for (id, trigger, at) in history {
        per.entry(id).or_default().entry(trigger).or_insert(at);
    }
    let (mut h1, mut h2, mut h3, mut h4) = (vec![], vec![], vec![], vec![]);
    for t in per.values() {
        let g = |a: &str, b: &str| gap(t.get(a), t.get(b));
        h1.extend(g("placed", "InventoryReserved"));
        h2.extend(g("InventoryReserved", "PaymentAuthorized"));
        h3.extend(g("PaymentAuthorized", "PaymentCaptured"));
        h4.extend(g("placed", "PaymentCaptured"));
    }

    // Each event on the critical path: where it is written, and who consumes it next.
    let chain: [(&str, &str, &str, &str); 6] = [
        ("OrderCreated", "orders", "catalog", "catalog-inventory"),
        ("InventoryReserved", "catalog", "orders", "order-saga"),
        ("PaymentRequested", "orders", "payment", "payment-saga"),
        ("PaymentAuthorized", "payment", "orders", "order-saga"),
        ("OrderConfirmed", "orders", "payment", "payment-saga"),
        ("PaymentCaptured", "payment", "orders", "order-saga"),
    ];
    // (order, event type) -> (written, published, handled)
    type Times = (DateTime<Utc>, Option<DateTime<Utc>>, Option<DateTime<Utc>>);
    let mut times: HashMap<(String, String), Times> = HashMap::new();
    for (event, source, consumer_db, group) in chain {
        let rows: Vec<OutboxRow> = sqlx::query_as(
            "SELECT aggregate_id, event_id, created_at, published_at FROM outbox
             WHERE event_type = $1 AND aggregate_id = ANY($2)",
        )
        .bind(event)
        .bind(&text_ids)
        .fetch_all(pool(source)?)
        .await?;
        let event_ids: Vec<Uuid> = rows.iter().map(|r| r.1).collect();
        let handled: HashMap<Uuid, DateTime<Utc>> = sqlx::query_as::<_, (Uuid, DateTime<Utc>)>(
            "SELECT event_id, handled_at FROM inbox WHERE event_id = ANY($1) AND consumer_group = $2",
        )
        .bind(&event_ids)
        .bind(group)
        .fetch_all(pool(consumer_db)?)
        .await?
        .into_iter()
        .collect();
        for (agg, event_id, created, published) in rows {
            times.insert(
                (agg, event.to_owned()),
                (created, published, handled.get(&event_id).copied()),
            );
        }
    }
    // The payment worker: gateway call latencies (successful authorize and capture).
    let gateway: Vec<(String, i32)> = sqlx::query_as(
        "SELECT a.operation, a.latency_ms FROM payment_attempts a JOIN payments p ON p.id = a.payment_id
         WHERE p.order_id = ANY($1) AND a.outcome = 'succeeded'",
    )
    .bind(ids)
    .fetch_all(pool("payment")?)
    .await?;

    println!("where the time went ({} finished orders; medians / p90 in ms, Postgres timestamps; \"written\" is the writing transaction's start):", per.len());
    println!("| step | median | p90 |");
    println!("|---|---:|---:|");
    let row = |label: String, mut v: Vec<f64>| {
        let (m, p) = med_p90(&mut v);
        println!("| {label} | {m:.1} | {p:.1} |");
    };
    let order_ids = text_ids.clone();
    let col = |f: &dyn Fn(&str) -> Option<f64>| -> Vec<f64> {
        order_ids.iter().filter_map(|id| f(id)).collect()
    };
    let t = |id: &str, e: &str| times.get(&(id.to_owned(), e.to_owned()));
    for (event, source, _, group) in chain {
        let src = if source == "orders" { "order" } else { source };
        row(
            format!("{event}: written → published ({src} relay)"),
            col(&|id| t(id, event).and_then(|x| gap(Some(&x.0), x.1.as_ref()))),
        );
        row(
            format!("{event}: published → handled ({group}: broker + fetch)"),
            col(&|id| t(id, event).and_then(|x| gap(x.1.as_ref(), x.2.as_ref()))),
        );
        let next = match event {
            "PaymentRequested" => Some("PaymentAuthorized"),
            "OrderConfirmed" => Some("PaymentCaptured"),
            _ => None,
        };
        if let Some(next) = next {
            row(
                format!("{event} handled → {next} written (payment worker + gateway)"),
                col(&|id| {
                    let a = t(id, event)?.2;
                    let b = t(id, next)?.0;
                    gap(a.as_ref(), Some(&b))
                }),
            );
        }
    }
    for op in ["authorize", "capture"] {
        row(
            format!("gateway {op} call (mock, payment_attempts.latency_ms)"),
            gateway
                .iter()
                .filter(|(o, _)| o == op)
                .map(|(_, l)| f64::from(*l))
                .collect(),
        );
    }
    let med = |mut v: Vec<f64>| med_p90(&mut v).0;
    println!(
        "order history medians ms: placed→reserved {:.1}, reserved→authorized {:.1}, authorized→captured {:.1}, placed→captured {:.1}",
        med(h1.clone()),
        med(h2.clone()),
        med(h3.clone()),
        med(h4.clone())
    );
    Ok(format!(
        "{:.0} | {:.0} | {:.0} | {:.0}",
        med(h1),
        med(h2),
        med(h3),
        med(h4)
    ))
}
