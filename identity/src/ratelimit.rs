//! Failed-login throttling in Redis, per account and per client address, shared by all replicas;
//! and the throttle of requests that send mail (forgot-password, resend-verification), per
//! address and per client, so nobody can mail-bomb an inbox or use identity as a spam relay.
//!
//! An attempt takes a slot *before* the password is checked (one atomic script), so a burst of
//! parallel guesses cannot slip past the limit; a successful login gives the slots back. When the
//! limit is reached the caller gets the time until the window ends, for `Retry-After`.
//! If Redis is unreachable, logins are allowed and the failure is logged: an outage of the throttle
//! must not lock every user out.

use std::net::IpAddr;

use shared::redis::RedisPool;

// KEYS: the counters to check (account, then address if known). ARGV[1]: window in ms;
// ARGV[i+1]: the limit of KEYS[i]. Returns 0 when a slot was taken, else ms until retry.
const ACQUIRE: &str = r"
for i, k in ipairs(KEYS) do
  local n = tonumber(redis.call('GET', k) or '0')
  if n >= tonumber(ARGV[i + 1]) then
    local ttl = redis.call('PTTL', k)
    if ttl < 0 then ttl = tonumber(ARGV[1]) end
    return ttl
  end
end
for _, k in ipairs(KEYS) do
  if redis.call('INCR', k) == 1 then redis.call('PEXPIRE', k, ARGV[1]) end
end
return 0
";

// KEYS[1]: the account counter (cleared); KEYS[2], if given: the address counter (one slot back).
const RELEASE: &str = r"
redis.call('DEL', KEYS[1])
if KEYS[2] and redis.call('DECR', KEYS[2]) <= 0 then redis.call('DEL', KEYS[2]) end
return 0
";

/// Take one slot of each `(key, limit)` counter in one atomic script, or none. `Err(seconds)` until
/// the fullest counter's window ends; a Redis failure lets the request through (logged as `what`).
async fn take_slots(
    redis: &RedisPool,
    script: &redis::Script,
    window_ms: u64,
    counters: &[(String, u32)],
    what: &str,
) -> Result<(), u64> {
    let mut invocation = script.prepare_invoke();
    invocation.arg(window_ms);
    for (key, limit) in counters {
        invocation.key(key).arg(*limit);
    }
    let mut conn = redis.conn();
    let result: redis::RedisResult<i64> = invocation.invoke_async(&mut conn).await;
    match result {
        Ok(0) => Ok(()),
        Ok(ms) => Err((ms as u64).div_ceil(1000).max(1)),
        Err(e) => {
            tracing::error!(error = %e, "{what} throttle unavailable; letting the request through");
            Ok(())
        }
    }
}

#[derive(Clone)]
pub struct LoginLimiter {
    redis: RedisPool,
    per_account: u32,
    per_ip: u32,
    window_ms: u64,
    acquire: redis::Script,
    release: redis::Script,
}

impl LoginLimiter {
    pub fn new(redis: RedisPool, per_account: u32, per_ip: u32, window_secs: u64) -> Self {
        Self {
            redis,
            per_account,
            per_ip,
            window_ms: window_secs * 1000,
            acquire: redis::Script::new(ACQUIRE),
            release: redis::Script::new(RELEASE),
        }
    }

    fn account_key(&self, account: &str) -> String {
        self.redis
            .key(&["login-fail", "account", &account.to_lowercase()])
    }

    fn ip_key(&self, ip: IpAddr) -> String {
        self.redis.key(&["login-fail", "ip", &ip.to_string()])
    }

    /// `Ok(())` to go ahead, `Err(seconds)` to refuse with that `Retry-After`.
    pub async fn acquire(&self, account: &str, ip: Option<IpAddr>) -> Result<(), u64> {
        let mut counters = vec![(self.account_key(account), self.per_account)];
        if let Some(ip) = ip {
            counters.push((self.ip_key(ip), self.per_ip));
        }
        take_slots(
            &self.redis,
            &self.acquire,
            self.window_ms,
            &counters,
            "login",
        )
        .await
    }

    /// A successful login: forget the account's failures and give back the address's slot.
    pub async fn succeeded(&self, account: &str, ip: Option<IpAddr>) {
        let mut invocation = self.release.prepare_invoke();
        invocation.key(self.account_key(account));
        if let Some(ip) = ip {
            invocation.key(self.ip_key(ip));
        }
        let mut conn = self.redis.conn();
        let result: redis::RedisResult<i64> = invocation.invoke_async(&mut conn).await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not release login throttle slot");
        }
    }

    /// After a password reset the account starts clean.
    pub async fn reset_account(&self, account: &str) {
        let mut conn = self.redis.conn();
        let result: redis::RedisResult<i64> = redis::cmd("DEL")
            .arg(self.account_key(account))
            .query_async(&mut conn)
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not reset login throttle");
        }
    }
}

/// Throttle of requests that make identity send mail. Every request counts, whether or not the
/// address has an account, so the answer (`202` or `429`) says nothing about accounts. Fixed
/// windows; like the login throttle, a Redis outage lets requests through (logged).
#[derive(Clone)]
pub struct MailLimiter {
    redis: RedisPool,
    per_address: u32,
    per_client: u32,
    window_ms: u64,
    acquire: redis::Script,
}

impl MailLimiter {
    pub fn new(redis: RedisPool, per_address: u32, per_client: u32, window_secs: u64) -> Self {
        Self {
            redis,
            per_address,
            per_client,
            window_ms: window_secs * 1000,
            acquire: redis::Script::new(ACQUIRE),
        }
    }

    /// Count one `purpose` request for `address` (normalised) from `ip`. `Err(seconds)` when a
    /// limit is reached, for `Retry-After`.
    pub async fn acquire(
        &self,
        purpose: &str,
        address: &str,
        ip: Option<IpAddr>,
    ) -> Result<(), u64> {
        let mut counters = vec![(
            self.redis.key(&["mail", purpose, "address", address]),
            self.per_address,
        )];
        if let Some(ip) = ip {
            counters.push((
                self.redis.key(&["mail", purpose, "ip", &ip.to_string()]),
                self.per_client,
            ));
        }
        take_slots(
            &self.redis,
            &self.acquire,
            self.window_ms,
            &counters,
            "mail",
        )
        .await
    }
}
