//! `koupang-bench`: drives a running Koupang stack (`make up`) over HTTP and prints a table of
//! throughput and latency percentiles per scenario. `scripts/bench` calls it; later services add
//! their scenarios here.
//!
//! Usage: `koupang-bench [--identity URL] [--catalog URL] [--cart URL] [--order URL] [--concurrency N] [--seconds S] [--rate R] [--open-seconds S] [--poll-ms MS] [SCENARIO...]`
//! Scenarios: `identity` (login, GET /users/me; needs `make up`), `catalog` (product detail cached
//! and uncached, filtered listing, batch SKU lookup; needs `make up`), `cart` (add-to-cart,
//! get-cart; needs `make up`), `events` (outbox relay
//! throughput and commit→handled latency; needs Postgres and a broker, `--rate`, `--prefill`),
//! `saga` (whole orders, placed → confirmed + captured: closed loops at concurrency 1, 16, 64 —
//! or `--concurrency N` — for `--seconds` (15), then an open loop at `--rate` (100/s) for
//! `--open-seconds` (30; `--rate 0` skips it); needs `make up`, its Postgres and `.dev/run`).

mod cart;
mod catalog;
mod events;
mod saga;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};
use tokio::sync::Mutex;

struct Options {
    identity: String,
    catalog: String,
    cart: String,
    order: String,
    redis_url: String,
    redis_prefix: String,
    database_url: String,
    brokers: String,
    rate: u32,
    prefill: usize,
    concurrency: usize,
    seconds: u64,
    /// The saga scenario's settings (its defaults differ from the others': see `options`).
    saga_concurrency: Vec<usize>,
    saga_seconds: u64,
    saga_rate: u32,
    open_seconds: u64,
    poll_ms: u64,
    /// Where `make up` keeps its pid files (`.dev/run`), for the saga's CPU and RSS columns.
    run_dir: String,
    scenarios: Vec<String>,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        identity: std::env::var("IDENTITY_URL").unwrap_or_else(|_| "http://127.0.0.1:8081".into()),
        catalog: std::env::var("CATALOG_URL").unwrap_or_else(|_| "http://127.0.0.1:8082".into()),
        cart: std::env::var("CART_URL").unwrap_or_else(|_| "http://127.0.0.1:8083".into()),
        order: std::env::var("ORDER_URL").unwrap_or_else(|_| "http://127.0.0.1:8084".into()),
        redis_url: std::env::var("CATALOG_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        redis_prefix: std::env::var("CATALOG_REDIS_PREFIX").unwrap_or_else(|_| "koupang:".into()),
        database_url: std::env::var("BENCH_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
        brokers: std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into()),
        rate: 500,
        prefill: 20_000,
        concurrency: 16,
        seconds: 10,
        saga_concurrency: vec![1, 16, 64],
        saga_seconds: 15,
        saga_rate: 100,
        open_seconds: 30,
        poll_ms: 5,
        run_dir: std::env::var("BENCH_RUN_DIR").unwrap_or_else(|_| ".dev/run".into()),
        scenarios: vec![],
    };
    let (mut concurrency, mut seconds, mut rate) = (None, None, None);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .with_context(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--identity" => o.identity = value()?,
            "--catalog" => o.catalog = value()?,
            "--cart" => o.cart = value()?,
            "--database-url" => o.database_url = value()?,
            "--brokers" => o.brokers = value()?,
            "--order" => o.order = value()?,
            "--rate" => rate = Some(value()?.parse()?),
            "--prefill" => o.prefill = value()?.parse()?,
            "--concurrency" => concurrency = Some(value()?.parse()?),
            "--seconds" => seconds = Some(value()?.parse()?),
            "--open-seconds" => o.open_seconds = value()?.parse()?,
            "--poll-ms" => o.poll_ms = value()?.parse()?,
            "--run-dir" => o.run_dir = value()?,
            s if !s.starts_with("--") => o.scenarios.push(s.to_owned()),
            other => anyhow::bail!("unknown option {other}"),
        }
    }
    // The saga runs several concurrencies, longer, and a slower open loop unless told otherwise.
    o.concurrency = concurrency.unwrap_or(o.concurrency);
    o.saga_concurrency = concurrency.map_or(o.saga_concurrency, |c| vec![c]);
    o.seconds = seconds.unwrap_or(o.seconds);
    o.saga_seconds = seconds.unwrap_or(o.saga_seconds);
    o.rate = rate.unwrap_or(o.rate);
    o.saga_rate = rate.unwrap_or(o.saga_rate);
    if o.scenarios.is_empty() {
        o.scenarios.push("identity".into());
    }
    Ok(o)
}

struct Row {
    name: String,
    concurrency: usize,
    requests: usize,
    errors: usize,
    rps: f64,
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
}

/// Run `op` from `concurrency` workers for `seconds`; every call is one timed request.
async fn load<F, Fut>(name: &str, concurrency: usize, seconds: u64, op: F) -> Row
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    load_timed(name, concurrency, seconds, move |w| {
        let op = op.clone();
        async move { (op(w).await, None) }
    })
    .await
}

/// As `load`, but `op` may time its request itself (returning `Some`), so that set-up work it
/// does first (e.g. dropping a cache entry) stays out of the numbers.
async fn load_timed<F, Fut>(name: &str, concurrency: usize, seconds: u64, op: F) -> Row
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (bool, Option<Duration>)> + Send,
{
    let op = Arc::new(op);
    let samples = Arc::new(Mutex::new(Vec::<(Duration, bool)>::new()));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let op = op.clone();
            let samples = samples.clone();
            tokio::spawn(async move {
                let mut local = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let (ok, took) = op(w).await;
                    local.push((took.unwrap_or_else(|| t.elapsed()), ok));
                }
                samples.lock().await.extend(local);
            })
        })
        .collect();
    for w in workers {
        let _ = w.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let all = samples.lock().await;
    let errors = all.iter().filter(|(_, ok)| !ok).count();
    let mut lat: Vec<Duration> = all.iter().map(|(d, _)| *d).collect();
    lat.sort();
    let pct = |p: f64| -> Duration {
        if lat.is_empty() {
            Duration::ZERO
        } else {
            lat[((lat.len() as f64 - 1.0) * p).round() as usize]
        }
    };
    Row {
        name: name.to_owned(),
        concurrency,
        requests: lat.len(),
        errors,
        rps: lat.len() as f64 / elapsed,
        p50: pct(0.50),
        p90: pct(0.90),
        p99: pct(0.99),
        max: lat.last().copied().unwrap_or_default(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn print(rows: &[Row]) {
    println!(
        "\n| scenario | conc | requests | errors | req/s | p50 ms | p90 ms | p99 ms | max ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {:.1} | {} | {} | {} | {} |",
            r.name,
            r.concurrency,
            r.requests,
            r.errors,
            r.rps,
            ms(r.p50),
            ms(r.p90),
            ms(r.p99),
            ms(r.max)
        );
    }
}

async fn identity(o: &Options, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let base = o.identity.trim_end_matches('/').to_owned();
    // One fresh user per worker, so login throttling of one account never enters the numbers.
    let run = uuid::Uuid::now_v7().simple().to_string();
    let password = "Bench-passw0rd!";
    let mut users = Vec::new();
    for w in 0..o.concurrency {
        let username = format!("bench{}_{w}", &run[20..]);
        let resp = client
            .post(format!("{base}/api/v1/users/register"))
            .json(
                &json!({"username": username, "email": format!("{username}@bench.invalid"),
                          "password": password, "role": "BUYER"}),
            )
            .send()
            .await
            .context("identity is not reachable: is the stack up (make up)?")?;
        anyhow::ensure!(
            resp.status().is_success(),
            "register failed: {}",
            resp.text().await?
        );
        users.push(username);
    }
    let users = Arc::new(users);

    let (c, b, u) = (client.clone(), base.clone(), users.clone());
    rows.push(
        load(
            "identity: POST /users/login",
            o.concurrency,
            o.seconds,
            move |w| {
                let (c, b, u) = (c.clone(), b.clone(), u.clone());
                async move {
                    c.post(format!("{b}/api/v1/users/login"))
                        .json(&json!({"username": u[w], "password": password}))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success())
                }
            },
        )
        .await,
    );

    let login: Value = client
        .post(format!("{base}/api/v1/users/login"))
        .json(&json!({"username": users[0], "password": password}))
        .send()
        .await?
        .json()
        .await?;
    let token = Arc::new(
        login["access_token"]
            .as_str()
            .context("login answered no token")?
            .to_owned(),
    );
    let (c, b) = (client.clone(), base.clone());
    rows.push(
        load(
            "identity: GET /users/me",
            o.concurrency,
            o.seconds,
            move |_| {
                let (c, b, t) = (c.clone(), b.clone(), token.clone());
                async move {
                    c.get(format!("{b}/api/v1/users/me"))
                        .bearer_auth(t.as_str())
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

async fn events_scenario(o: &Options, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let r = events::run(&o.database_url, &o.brokers, o.prefill, o.rate, o.seconds).await?;
    rows.push(Row {
        name: format!("events: relay drain of {} (one per order)", r.relay_events),
        concurrency: 1,
        requests: r.relay_events,
        errors: 0,
        rps: r.relay_events as f64 / r.relay_secs,
        p50: Duration::ZERO,
        p90: Duration::ZERO,
        p99: Duration::ZERO,
        max: Duration::from_secs_f64(r.relay_secs),
    });
    // Backlog drains: rps is events/s, max is the time to drain (the recovery after an outage).
    for b in &r.backlogs {
        rows.push(Row {
            name: format!(
                "events: backlog of {} ({} per order), run_length {}",
                b.events, b.per_aggregate, b.run_length
            ),
            concurrency: 1,
            requests: b.events,
            errors: 0,
            rps: b.events as f64 / b.secs,
            p50: Duration::ZERO,
            p90: Duration::ZERO,
            p99: Duration::ZERO,
            max: Duration::from_secs_f64(b.secs),
        });
    }
    let mut lat = r.latency.clone();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len().max(1) - 1) as f64 * p).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    rows.push(Row {
        name: format!("events: commit->handled at {}/s", r.rate),
        concurrency: 1,
        requests: lat.len(),
        errors: r.latency_expected.saturating_sub(lat.len()),
        rps: lat.len() as f64 / o.seconds as f64,
        p50: pct(0.5),
        p90: pct(0.9),
        p99: pct(0.99),
        max: lat.last().copied().unwrap_or_default(),
    });
    if let Some((published, handled)) = &r.split {
        println!(
            "events: at {}/s, commit->published p50 / p90 / p99 {:.1} / {:.1} / {:.1} ms; published->handled {:.1} / {:.1} / {:.1} ms (Postgres timestamps)",
            r.rate, published[0], published[1], published[2], handled[0], handled[1], handled[2]
        );
    }
    if !r.after_quiet.is_empty() {
        let ms: Vec<String> = r
            .after_quiet
            .iter()
            .map(|d| format!("{:.0}", d.as_secs_f64() * 1000.0))
            .collect();
        println!(
            "events: a single event after a quiet spell (consumer dozing), commit->handled: {} ms",
            ms.join(", ")
        );
    }
    if let Some(idle) = &r.idle_cpu {
        println!(
            "events: idle broker CPU {:.1}% of one core over {} s (one subscribed consumer, fetch wait {} ms, {})",
            idle.percent,
            idle.secs,
            idle.fetch_wait.as_millis(),
            match idle.doze_after {
                Some(after) => format!("dozing after {} ms idle", after.as_millis()),
                None => "never dozing".into(),
            }
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = options()?;
    let mut rows = Vec::new();
    for s in o.scenarios.clone() {
        match s.as_str() {
            "identity" => identity(&o, &mut rows).await?,
            "events" => events_scenario(&o, &mut rows).await?,
            "catalog" => catalog::run(&o, &mut rows).await?,
            "cart" => cart::run(&o, &mut rows).await?,
            "saga" => saga::run(&o).await?,
            other => {
                anyhow::bail!("unknown scenario '{other}' (identity, catalog, cart, events, saga)")
            }
        }
    }
    if !rows.is_empty() {
        print(&rows);
    }
    Ok(())
}
