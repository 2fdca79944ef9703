//! A buyer's cart in Redis, as three hashes keyed by SKU id: quantities (`:q`), the price
//! snapshot taken from the catalog when the line was added (`:l`, JSON) and when the line first
//! appeared (`:t`, for a stable order). The keys share a hash tag (`{buyer}`), so a Lua script may
//! touch all three on a cluster too.
//!
//! Every change that has a limit runs as one Lua script: the check and the write are atomic, so
//! racing requests can never push a cart past its line or quantity limit. Every write refreshes
//! the cart's TTL.

use std::collections::HashMap;

use redis::aio::ConnectionManager;
use redis::Script;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use shared::money::Currency;
use uuid::Uuid;

use crate::error::CartError;

/// The price and description of a line, as the catalog gave them when it was added. Stored as
/// JSON with the price as a decimal string (`"19.99"`) and the currency code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub product_id: Uuid,
    pub product_name: String,
    pub image_url: Option<String>,
    #[serde(with = "rust_decimal::serde::str")]
    pub unit_price: Decimal,
    pub currency: Currency,
}

/// A stored line that cannot be read back (or written) is corruption of the cart's own data: an
/// internal error that names the line, never a line silently dropped or priced at zero.
fn corrupt(what: &str, sku: &str, detail: String) -> CartError {
    CartError::Unexpected(anyhow::anyhow!(
        "cart line {sku}: unreadable {what}: {detail}"
    ))
}

#[derive(Debug, Clone)]
pub struct StoredLine {
    pub sku_id: Uuid,
    pub quantity: u32,
    pub snapshot: Snapshot,
    pub added_ms: i64,
}

/// What an add did.
#[derive(Debug, PartialEq, Eq)]
pub enum AddResult {
    /// The line now holds this many units.
    Added(u32),
    CartFull,
    OverQuantity(i64),
}

const ADD: &str = r"
-- KEYS: quantities, snapshots, added-at. ARGV: sku, snapshot, units, max lines, max qty, ttl, now
local current = redis.call('HGET', KEYS[1], ARGV[1])
local n = tonumber(ARGV[3])
if current then
  n = n + tonumber(current)
elseif redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then
  return {-1, 0}
end
if n > tonumber(ARGV[5]) then return {-2, n} end
redis.call('HSET', KEYS[1], ARGV[1], n)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSETNX', KEYS[3], ARGV[1], ARGV[7])
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[6]) end
return {1, n}
";

const SET: &str = r"
-- KEYS: quantities, snapshots, added-at. ARGV: sku, quantity, ttl
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ARGV[3]) end
return 1
";

#[derive(Clone)]
pub struct CartStore {
    conn: ConnectionManager,
    prefix: String,
    ttl_secs: u64,
    max_lines: u32,
    max_quantity: u32,
    add: Script,
    set: Script,
}

impl CartStore {
    pub fn new(
        conn: ConnectionManager,
        prefix: &str,
        ttl_secs: u64,
        max_lines: u32,
        max_quantity: u32,
    ) -> Self {
        Self {
            conn,
            prefix: prefix.to_owned(),
            ttl_secs,
            max_lines,
            max_quantity,
            add: Script::new(ADD),
            set: Script::new(SET),
        }
    }

    /// The three keys of `buyer`'s cart (quantities, snapshots, added-at).
    pub fn keys(prefix: &str, buyer: Uuid) -> [String; 3] {
        let base = format!("{prefix}cart:{{{buyer}}}");
        [
            format!("{base}:q"),
            format!("{base}:l"),
            format!("{base}:t"),
        ]
    }

    /// The Redis connection (for operators' tools and tests).
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn max_quantity(&self) -> u32 {
        self.max_quantity
    }

    pub async fn lines(&self, buyer: Uuid) -> Result<Vec<StoredLine>, CartError> {
        let [q, l, t] = Self::keys(&self.prefix, buyer);
        let mut c = self.conn.clone();
        let (qs, ls, ts): (
            HashMap<String, u32>,
            HashMap<String, String>,
            HashMap<String, i64>,
        ) = redis::pipe()
            .hgetall(&q)
            .hgetall(&l)
            .hgetall(&t)
            .query_async(&mut c)
            .await?;
        let mut lines: Vec<StoredLine> = qs
            .into_iter()
            .map(|(sku, quantity)| {
                let raw = ls
                    .get(&sku)
                    .ok_or_else(|| corrupt("snapshot", &sku, "missing".into()))?;
                let snapshot: Snapshot = serde_json::from_str(raw)
                    .map_err(|e| corrupt("snapshot", &sku, e.to_string()))?;
                Ok(StoredLine {
                    sku_id: sku
                        .parse()
                        .map_err(|e: uuid::Error| corrupt("sku id", &sku, e.to_string()))?,
                    quantity,
                    snapshot,
                    // A line whose first-seen time is missing sorts first; its data is intact.
                    added_ms: ts.get(&sku).copied().unwrap_or(0),
                })
            })
            .collect::<Result<_, CartError>>()?;
        lines.sort_by_key(|l| (l.added_ms, l.sku_id));
        Ok(lines)
    }

    pub async fn quantity(&self, buyer: Uuid, sku: Uuid) -> redis::RedisResult<u32> {
        let [q, _, _] = Self::keys(&self.prefix, buyer);
        let mut c = self.conn.clone();
        let n: Option<u32> = redis::cmd("HGET")
            .arg(&q)
            .arg(sku.to_string())
            .query_async(&mut c)
            .await?;
        Ok(n.unwrap_or(0))
    }

    /// Add `units` to the line (creating it with `snapshot`), within the limits, atomically.
    pub async fn add(
        &self,
        buyer: Uuid,
        sku: Uuid,
        units: u32,
        snapshot: &Snapshot,
    ) -> Result<AddResult, CartError> {
        let keys = Self::keys(&self.prefix, buyer);
        let json = serde_json::to_string(snapshot)
            .map_err(|e| corrupt("snapshot", &sku.to_string(), e.to_string()))?;
        let mut c = self.conn.clone();
        let (code, n): (i64, i64) = self
            .add
            .key(&keys[0])
            .key(&keys[1])
            .key(&keys[2])
            .arg(sku.to_string())
            .arg(json)
            .arg(units)
            .arg(self.max_lines)
            .arg(self.max_quantity)
            .arg(self.ttl_secs)
            .arg(chrono::Utc::now().timestamp_millis())
            .invoke_async(&mut c)
            .await?;
        Ok(match code {
            1 => AddResult::Added(u32::try_from(n).unwrap_or(u32::MAX)),
            -1 => AddResult::CartFull,
            _ => AddResult::OverQuantity(n),
        })
    }

    /// Set an existing line's quantity; false when the line is not in the cart.
    pub async fn set(&self, buyer: Uuid, sku: Uuid, quantity: u32) -> redis::RedisResult<bool> {
        let keys = Self::keys(&self.prefix, buyer);
        let mut c = self.conn.clone();
        let done: i64 = self
            .set
            .key(&keys[0])
            .key(&keys[1])
            .key(&keys[2])
            .arg(sku.to_string())
            .arg(quantity)
            .arg(self.ttl_secs)
            .invoke_async(&mut c)
            .await?;
        Ok(done == 1)
    }

    /// Remove a line; false when it was not there.
    pub async fn remove(&self, buyer: Uuid, sku: Uuid) -> redis::RedisResult<bool> {
        let [q, l, t] = Self::keys(&self.prefix, buyer);
        let sku = sku.to_string();
        let mut c = self.conn.clone();
        let (removed,): (i64,) = redis::pipe()
            .atomic()
            .hdel(&q, &sku)
            .hdel(&l, &sku)
            .ignore()
            .hdel(&t, &sku)
            .ignore()
            .expire(&q, self.ttl_i64())
            .ignore()
            .expire(&l, self.ttl_i64())
            .ignore()
            .expire(&t, self.ttl_i64())
            .ignore()
            .query_async(&mut c)
            .await?;
        Ok(removed == 1)
    }

    pub async fn clear(&self, buyer: Uuid) -> redis::RedisResult<()> {
        let [q, l, t] = Self::keys(&self.prefix, buyer);
        let mut c = self.conn.clone();
        redis::cmd("DEL")
            .arg(&q)
            .arg(&l)
            .arg(&t)
            .query_async(&mut c)
            .await
    }

    fn ttl_i64(&self) -> i64 {
        i64::try_from(self.ttl_secs).unwrap_or(i64::MAX)
    }
}
