//! `koupang-bench`: drives a running Koupang stack (`make up`) over HTTP and prints a table of
//! throughput and latency percentiles per scenario. `scripts/bench` calls it; later services add
//! their scenarios here.
//!
//! Usage: `koupang-bench [--identity URL] [--catalog URL] [--cart URL] [--order URL] [--concurrency N] [--seconds S] [--rate R] [--http-rate R] [--open-seconds S] [--poll-ms MS] [SCENARIO...]`
//! Scenarios: `identity` (login, GET /users/me closed and open loop, then a login storm of 32
//! workers with open-loop probes of /users/me and catalog's product detail beside it; needs
//! `make up`), `catalog` (product detail cached — closed and open loop — and uncached, the public
//! listing, a filtered listing, a search, batch SKU lookup; needs `make up`), `cart` (add-to-cart,
//! get-cart; needs `make up`), `events` (outbox relay
//! throughput and commit→handled latency; needs Postgres and a broker, `--rate`, `--prefill`),
//! `saga` (whole orders, placed → confirmed + captured: closed loops at concurrency 1, 16, 64 —
//! or `--concurrency N` — for `--seconds` (15), then an open loop at `--rate` (100/s) for
//! `--open-seconds` (30; `--rate 0` skips it); needs `make up`, its Postgres and `.dev/run`).
//! Open-loop HTTP rows send `--http-rate` requests a second (1000) and time each from its intended
//! start. After each scenario: every `make up` process's CPU seconds and peak RSS over it.

mod cart;
mod catalog;
mod events;
mod procs;
mod saga;
mod stats;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use serde_json::{json, Value};

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
    /// Arrival rate of the open-loop HTTP rows (`--http-rate`).
    http_rate: u32,
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
        http_rate: 1000,
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
            "--http-rate" => o.http_rate = value()?.parse()?,
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
    /// `c16` for a closed loop of 16 workers, `2000/s` for an open loop at that arrival rate.
    mode: String,
    requests: usize,
    errors: usize,
    rps: f64,
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
}

impl Row {
    fn from_hist(name: &str, mode: String, h: &Histogram<u64>, errors: usize, secs: f64) -> Row {
        Row {
            name: name.to_owned(),
            mode,
            requests: h.len() as usize,
            errors,
            rps: h.len() as f64 / secs,
            p50: stats::at(h, 0.50),
            p90: stats::at(h, 0.90),
            p99: stats::at(h, 0.99),
            max: stats::at(h, 1.0),
        }
    }
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
/// does first (e.g. dropping a cache entry) stays out of the numbers. A closed loop: each worker
/// sends its next request when the last one answered, so a slow answer also delays the requests
/// behind it and the tail looks better than users would see it (`load_open` does not).
async fn load_timed<F, Fut>(name: &str, concurrency: usize, seconds: u64, op: F) -> Row
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (bool, Option<Duration>)> + Send,
{
    let op = Arc::new(op);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let op = op.clone();
            tokio::spawn(async move {
                let (mut h, mut errors) = (stats::hist(), 0);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let (ok, took) = op(w).await;
                    stats::record(&mut h, took.unwrap_or_else(|| t.elapsed()));
                    errors += usize::from(!ok);
                }
                (h, errors)
            })
        })
        .collect();
    let (mut all, mut errors) = (stats::hist(), 0);
    for w in workers {
        if let Ok((h, e)) = w.await {
            let _ = all.add(&h);
            errors += e;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    Row::from_hist(name, format!("c{concurrency}"), &all, errors, secs)
}

/// An open loop: requests start at a fixed rate whatever the answers do, and each latency counts
/// from the request's intended start, so queueing in the service (or in the bench) shows in the
/// tail instead of being hidden by a worker that waited (coordinated omission). At most
/// `MAX_IN_FLIGHT` requests are outstanding; past that the sender waits, and those waits count.
async fn load_open<F, Fut>(name: &str, rate: u32, seconds: u64, op: F) -> Row
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    const MAX_IN_FLIGHT: usize = 4096;
    let rate = rate.max(1);
    let total = u64::from(rate) * seconds;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let results = Arc::new(std::sync::Mutex::new((stats::hist(), 0usize)));
    let started = tokio::time::Instant::now() + Duration::from_millis(10);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let intended = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(intended).await;
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let (fut, results) = (op(i), results.clone());
        tasks.spawn(async move {
            let ok = fut.await;
            let took = intended.elapsed();
            drop(permit);
            if let Ok(mut r) = results.lock() {
                stats::record(&mut r.0, took);
                r.1 += usize::from(!ok);
            }
        });
        // Reap finished tasks as we go so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let secs = started.elapsed().as_secs_f64();
    let r = results.lock().map(|r| (r.0.clone(), r.1));
    let (h, errors) = r.unwrap_or_else(|_| (stats::hist(), 0));
    Row::from_hist(name, format!("{rate}/s"), &h, errors, secs)
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

fn print(rows: &[Row]) {
    println!(
        "\n| scenario | load | requests | errors | req/s | p50 ms | p90 ms | p99 ms | max ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {:.1} | {} | {} | {} | {} |",
            r.name,
            r.mode,
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
    // One account per worker, and enough for the login storm of the mixed rows.
    for w in 0..o.concurrency.max(32) {
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
    let me = Arc::new(format!("{base}/api/v1/users/me"));
    let (c, u, t) = (client.clone(), me.clone(), token.clone());
    rows.push(
        load(
            "identity: GET /users/me",
            o.concurrency,
            o.seconds,
            move |_| get_ok(c.clone(), u.clone(), Some(t.clone())),
        )
        .await,
    );
    let (c, u, t) = (client.clone(), me.clone(), token.clone());
    rows.push(
        load_open(
            "identity: GET /users/me",
            o.http_rate,
            o.seconds,
            move |_| get_ok(c.clone(), u.clone(), Some(t.clone())),
        )
        .await,
    );
    mixed(o, rows, &client, users, password, token).await
}

/// `GET url` (with a bearer token when given) answered 2xx.
async fn get_ok(c: reqwest::Client, url: Arc<String>, token: Option<Arc<String>>) -> bool {
    let mut req = c.get(url.as_str());
    if let Some(t) = token {
        req = req.bearer_auth(t.as_str());
    }
    req.send().await.is_ok_and(|r| r.status().is_success())
}

/// Isolation: a login storm (`LOGIN_STORM` workers logging in back to back) while open loops at
/// a modest rate measure `GET /users/me` and catalog's product detail. Hashing is meant to stay
/// on its own threads; these rows show whether the storm slows anything else.
async fn mixed(
    o: &Options,
    rows: &mut Vec<Row>,
    client: &reqwest::Client,
    users: Arc<Vec<String>>,
    password: &'static str,
    token: Arc<String>,
) -> anyhow::Result<()> {
    const LOGIN_STORM: usize = 32;
    const PROBE_RATE: u32 = 200;
    let base = o.identity.trim_end_matches('/').to_owned();
    let catalog = o.catalog.trim_end_matches('/').to_owned();
    let listing: Value = client
        .get(format!("{catalog}/api/v1/products?limit=100"))
        .send()
        .await
        .context("catalog is not reachable: is the stack up (make up)?")?
        .json()
        .await?;
    let products: Vec<Arc<String>> = listing["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["id"].as_str())
        .map(|id| Arc::new(format!("{catalog}/api/v1/products/{id}")))
        .collect();
    anyhow::ensure!(
        !products.is_empty(),
        "catalog lists no products: run make seed"
    );
    let products = Arc::new(products);

    let (c, b) = (client.clone(), base.clone());
    let storm = tokio::spawn(load(
        "identity: POST /users/login (the storm)",
        LOGIN_STORM,
        o.seconds,
        move |w| {
            let (c, b, u) = (c.clone(), b.clone(), users.clone());
            async move {
                c.post(format!("{b}/api/v1/users/login"))
                    .json(&json!({"username": u[w % u.len()], "password": password}))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        },
    ));
    // Let the storm fill the hashing queue before measuring beside it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let probe_secs = o.seconds.saturating_sub(1).max(1);
    let (c, me) = (client.clone(), Arc::new(format!("{base}/api/v1/users/me")));
    let me_probe = tokio::spawn(load_open(
        "mixed: GET /users/me during the storm",
        PROBE_RATE,
        probe_secs,
        move |_| get_ok(c.clone(), me.clone(), Some(token.clone())),
    ));
    let c = client.clone();
    let detail_probe = load_open(
        "mixed: catalog GET /products/{id} during the storm",
        PROBE_RATE,
        probe_secs,
        move |i| {
            let url = products[i as usize % products.len()].clone();
            get_ok(c.clone(), url, None)
        },
    )
    .await;
    rows.push(storm.await?);
    rows.push(me_probe.await?);
    rows.push(detail_probe);
    Ok(())
}

async fn events_scenario(o: &Options, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let r = events::run(&o.database_url, &o.brokers, o.prefill, o.rate, o.seconds).await?;
    rows.push(Row {
        name: format!("events: relay drain of {} (one per order)", r.relay_events),
        mode: "1".into(),
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
            mode: "1".into(),
            requests: b.events,
            errors: 0,
            rps: b.events as f64 / b.secs,
            p50: Duration::ZERO,
            p90: Duration::ZERO,
            p99: Duration::ZERO,
            max: Duration::from_secs_f64(b.secs),
        });
    }
    let mut lat = stats::hist();
    for d in &r.latency {
        stats::record(&mut lat, *d);
    }
    let mut row = Row::from_hist(
        &format!("events: commit->handled at {}/s", r.rate),
        "1".into(),
        &lat,
        r.latency_expected.saturating_sub(r.latency.len()),
        o.seconds as f64,
    );
    row.mode = format!("{}/s", r.rate);
    rows.push(row);
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
    let run_dir = std::path::PathBuf::from(&o.run_dir);
    for s in o.scenarios.clone() {
        // The saga prints its own process table per run; the others get one per scenario.
        let before = (s != "saga" && s != "events").then(|| procs::Snapshot::take(&run_dir));
        let first = rows.len();
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
        if rows.len() > first {
            print(&rows[first..]);
        }
        if let Some(before) = before.filter(procs::Snapshot::found_any) {
            println!("\n{s}: the stack's processes over the scenario");
            procs::print_table(&before, &procs::Snapshot::take(&run_dir));
        }
    }
    if o.scenarios.len() > 1 && !rows.is_empty() {
        println!("\nAll scenarios:");
        print(&rows);
    }
    Ok(())
}
