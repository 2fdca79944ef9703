//! Cache-aside for product details and the first listing pages in Redis. The cache is an accelerator, never a dependency:
//! every failure (Redis down, slow, or never reachable since start-up) is logged, counted in
//! `catalog_cache_total{result="error"}`, and the caller reads Postgres instead. The connection is
//! made lazily and retried at most every few seconds, so a request never waits on a dead Redis for
//! longer than one short timeout.
//!
//! Writers drop the entry after their transaction commits; the TTL bounds the remaining race (a
//! reader that read Postgres before a write re-filling the cache after the write's delete).

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Mutex;
use uuid::Uuid;

const RECONNECT_EVERY: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct ProductCache {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    client: redis::Client,
    prefix: String,
    ttl_secs: u64,
    /// The connection once made (read on every request, so never behind an async lock).
    manager: std::sync::RwLock<Option<ConnectionManager>>,
    /// Held only while connecting; when the next attempt may be made.
    connecting: Mutex<Instant>,
}

impl ProductCache {
    /// A cache on `redis_url`; connecting happens on first use.
    pub fn new(redis_url: &str, prefix: &str, ttl_secs: u64) -> anyhow::Result<Self> {
        let client = redis::Client::open(redis_url)
            .map_err(|e| anyhow::anyhow!("invalid redis_url: {e}"))?;
        Ok(Self {
            inner: Some(Arc::new(Inner {
                client,
                prefix: format!("{prefix}catalog:"),
                ttl_secs,
                manager: std::sync::RwLock::new(None),
                connecting: Mutex::new(Instant::now()),
            })),
        })
    }

    /// No cache: every read goes to Postgres.
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    pub fn product_key(&self, id: Uuid) -> Option<String> {
        self.inner
            .as_ref()
            .map(|i| format!("{}product:{id}", i.prefix))
    }

    /// The public view of a product, serialised: `{etag}\n{json}` (docs/benchmarks.md).
    pub fn public_key(&self, id: Uuid) -> Option<String> {
        self.inner
            .as_ref()
            .map(|i| format!("{}public:{id}", i.prefix))
    }

    pub fn slug_key(&self, slug: &str) -> Option<String> {
        self.inner
            .as_ref()
            .map(|i| format!("{}slug:{slug}", i.prefix))
    }

    /// Whether Redis answers now (for the readiness report; the service is ready either way).
    pub async fn ping(&self) -> Result<(), String> {
        let Some(mut c) = self.conn().await else {
            return Err("not connected".into());
        };
        redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn conn(&self) -> Option<ConnectionManager> {
        let inner = self.inner.as_ref()?;
        if let Some(m) = inner.manager.read().ok().and_then(|g| g.clone()) {
            return Some(m);
        }
        // Never queue behind a connection attempt in progress: skip the cache instead.
        let mut next_attempt = inner.connecting.try_lock().ok()?;
        if let Some(m) = inner.manager.read().ok().and_then(|g| g.clone()) {
            return Some(m);
        }
        if Instant::now() < *next_attempt {
            return None;
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_millis(500))
            .set_response_timeout(Duration::from_millis(250))
            .set_factor(2)
            .set_max_delay(250)
            .set_number_of_retries(1);
        match ConnectionManager::new_with_config(inner.client.clone(), config).await {
            Ok(m) => {
                if let Ok(mut slot) = inner.manager.write() {
                    *slot = Some(m.clone());
                }
                Some(m)
            }
            Err(e) => {
                *next_attempt = Instant::now() + RECONNECT_EVERY;
                tracing::warn!(error = %e, "product cache: Redis unreachable; reading Postgres");
                count("connection", "error");
                None
            }
        }
    }

    /// A cached value; `entry` names its kind in `catalog_cache_total` (`detail`, `slug`).
    pub async fn get<T: DeserializeOwned>(&self, entry: &'static str, key: &str) -> Option<T> {
        let mut c = self.conn().await?;
        let raw: Result<Option<String>, _> = redis::cmd("GET").arg(key).query_async(&mut c).await;
        match raw {
            Ok(Some(s)) => match serde_json::from_str(&s) {
                Ok(v) => {
                    count(entry, "hit");
                    Some(v)
                }
                Err(e) => {
                    tracing::warn!(key, error = %e, "product cache: undecodable entry; ignoring");
                    count(entry, "miss");
                    None
                }
            },
            Ok(None) => {
                count(entry, "miss");
                None
            }
            Err(e) => {
                tracing::warn!(key, error = %e, "product cache: GET failed");
                count(entry, "error");
                None
            }
        }
    }

    /// The bytes stored under `key`, as stored (no decoding: served as they are).
    pub async fn get_raw(&self, key: &str) -> Option<Vec<u8>> {
        let mut c = self.conn().await?;
        let raw: Result<Option<Vec<u8>>, _> = redis::cmd("GET").arg(key).query_async(&mut c).await;
        match raw {
            Ok(Some(v)) => {
                count("public", "hit");
                Some(v)
            }
            Ok(None) => {
                count("public", "miss");
                None
            }
            Err(e) => {
                tracing::warn!(key, error = %e, "product cache: GET failed");
                count("public", "error");
                None
            }
        }
    }

    pub async fn set<T: Serialize>(&self, key: &str, value: &T) {
        let Ok(json) = serde_json::to_vec(value) else {
            return;
        };
        self.set_raw(key, &json).await;
    }

    pub async fn set_raw(&self, key: &str, bytes: &[u8]) {
        let (Some(inner), Some(mut c)) = (self.inner.as_ref(), self.conn().await) else {
            return;
        };
        let r: Result<(), _> = redis::cmd("SET")
            .arg(key)
            .arg(bytes)
            .arg("EX")
            .arg(inner.ttl_secs)
            .query_async(&mut c)
            .await;
        if let Err(e) = r {
            tracing::warn!(key, error = %e, "product cache: SET failed");
            count("write", "error");
        }
    }

    /// The hash of cached listing pages (field: the page's query, value: its JSON). One key, so
    /// a write drops them all with one `UNLINK` (freed off Redis's main thread).
    fn lists_key(&self) -> Option<String> {
        self.inner.as_ref().map(|i| format!("{}lists", i.prefix))
    }

    /// A cached listing page, as stored.
    pub async fn get_list(&self, field: &str) -> Option<Vec<u8>> {
        let key = self.lists_key()?;
        let mut c = self.conn().await?;
        let raw: Result<Option<Vec<u8>>, _> = redis::cmd("HGET")
            .arg(&key)
            .arg(field)
            .query_async(&mut c)
            .await;
        match raw {
            Ok(hit) => {
                count("list", if hit.is_some() { "hit" } else { "miss" });
                hit
            }
            Err(e) => {
                tracing::warn!(error = %e, "listing cache: HGET failed");
                count("list", "error");
                None
            }
        }
    }

    /// Keep a listing page. The hash expires `ttl` after its first page was stored (`NX`), not
    /// after its last, so a page a slow reader stored after a write's `DEL` lives at most that long.
    pub async fn set_list(&self, field: &str, bytes: &[u8]) {
        let (Some(inner), Some(key), Some(mut c)) =
            (self.inner.as_ref(), self.lists_key(), self.conn().await)
        else {
            return;
        };
        // MULTI/EXEC: the EXPIRE can never be lost after the HSET (a hash with no TTL would
        // keep a slow reader's stale page until the next write).
        let r: Result<(), _> = redis::pipe()
            .atomic()
            .cmd("HSET")
            .arg(&key)
            .arg(field)
            .arg(bytes)
            .ignore()
            .cmd("EXPIRE")
            .arg(&key)
            .arg(inner.ttl_secs)
            .arg("NX")
            .ignore()
            .query_async(&mut c)
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "listing cache: HSET failed");
            count("list", "error");
        }
    }

    /// Drop the cached details of `products` and every cached listing page: a product, SKU or
    /// image write (name, price, status, primary image) can change any page. Called after the
    /// write committed.
    pub async fn invalidate(&self, products: &[Uuid]) {
        let lists = self.lists_key();
        self.drop_keys(products, lists).await;
    }

    /// Drop only the cached details of `products`: for changes listing pages do not show
    /// (availability after a reservation).
    pub async fn invalidate_details(&self, products: &[Uuid]) {
        self.drop_keys(products, None).await;
    }

    /// Drop every cached listing page (a category moved or went: the category filter changed).
    pub async fn invalidate_lists(&self) {
        let lists = self.lists_key();
        self.drop_keys(&[], lists).await;
    }

    async fn drop_keys(&self, products: &[Uuid], lists: Option<String>) {
        if products.is_empty() && lists.is_none() {
            return;
        }
        let Some(mut c) = self.conn().await else {
            return;
        };
        let keys: Vec<String> = products
            .iter()
            .flat_map(|p| [self.product_key(*p), self.public_key(*p)])
            .flatten()
            .chain(lists)
            .collect();
        let r: Result<(), _> = redis::cmd("UNLINK").arg(&keys).query_async(&mut c).await;
        match r {
            Ok(()) => metrics::counter!("catalog_cache_invalidations_total").increment(1),
            Err(e) => {
                tracing::warn!(error = %e, "product cache: DEL failed; entries expire by TTL");
                count("invalidate", "error");
            }
        }
    }
}

/// `catalog_cache_total{entry, result}`: entry `detail`, `slug`, `public` (the public view's
/// bytes), `list` (first listing pages), `write` and `invalidate` (a failed SET or DEL) or
/// `connection` (no Redis to ask).
fn count(entry: &'static str, result: &'static str) {
    metrics::counter!("catalog_cache_total", "entry" => entry, "result" => result).increment(1);
}
