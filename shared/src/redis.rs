//! Redis: a multiplexed, self-reconnecting connection and the key prefix every key carries, so that
//! stacks and tests can share one server without seeing each other's keys.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::CommonConfig;

#[derive(Clone)]
pub struct RedisPool {
    pub conn: ConnectionManager,
    prefix: String,
}

impl RedisPool {
    pub async fn connect(config: &CommonConfig) -> anyhow::Result<Self> {
        let client = redis::Client::open(config.redis_url.expose())
            .map_err(|e| anyhow::anyhow!("invalid redis_url: {e}"))?;
        // Reconnection backs off 2× per try from redis' 1 s floor, capped at 500 ms, twice: a
        // request that lands while Redis is down fails within about a second (the API answers
        // 503) instead of waiting out redis' default schedule (a ×100 factor: minutes).
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(2))
            .set_factor(2)
            .set_max_delay(500)
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client, manager_config)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to Redis: {e}"))?;
        Ok(Self {
            conn,
            prefix: config.redis_prefix.clone(),
        })
    }

    /// `prefix + parts joined by ':'`.
    pub fn key(&self, parts: &[&str]) -> String {
        let mut k = self.prefix.clone();
        k.push_str(&parts.join(":"));
        k
    }

    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    pub async fn ping(&self) -> redis::RedisResult<()> {
        let mut c = self.conn();
        redis::cmd("PING")
            .query_async::<String>(&mut c)
            .await
            .map(|_| ())
    }
}
