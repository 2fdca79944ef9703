//! Typed, layered configuration: code defaults (which depend on the profile) → an optional TOML file
//! → environment variables. Loaded and validated once at start-up; a bad or missing setting is a
//! clear message naming the variable, never a panic deep inside.
//!
//! Every field of a service's config struct is reachable from the environment as
//! `<PREFIX>_<FIELD>` in upper case (nested structs join with `__`). Lists are comma-separated.
//! `<PREFIX>_CONFIG_FILE` names the TOML file. `<PREFIX>_PROFILE` (or `KOUPANG_PROFILE`) picks the
//! profile whose defaults start the stack of layers.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// Which set of defaults applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// A developer's machine (`make up`): relaxed defaults such as logging in unverified.
    Local,
    /// Automated tests.
    Test,
    /// Safe defaults for real deployments.
    Production,
}

impl Profile {
    pub fn from_env(prefix: &str) -> Result<Self, ConfigError> {
        let raw = std::env::var(format!("{prefix}_PROFILE"))
            .or_else(|_| std::env::var("KOUPANG_PROFILE"))
            .unwrap_or_else(|_| "production".into());
        match raw.to_ascii_lowercase().as_str() {
            "local" | "dev" | "development" => Ok(Self::Local),
            "test" => Ok(Self::Test),
            "production" | "prod" => Ok(Self::Production),
            other => Err(ConfigError(format!(
                "{prefix}_PROFILE: unknown profile '{other}' (expected local, test or production)"
            ))),
        }
    }
}

/// A configuration value that must not be printed (database URLs with passwords, keys).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl Serialize for Secret {
    // Serialised only to build the layered value; the layers never leave this module.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Settings every service has.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommonConfig {
    pub profile: Profile,
    pub host: String,
    pub port: u16,
    pub database_url: Secret,
    pub database_max_connections: u32,
    pub redis_url: Secret,
    /// Prefix of every Redis key this service writes, so stacks and tests can share one Redis.
    pub redis_prefix: String,
    /// `json` (default) or `pretty`.
    pub log_format: String,
    /// An `EnvFilter` directive such as `info,sqlx=warn`; `RUST_LOG` wins when set.
    pub log_level: String,
    /// Origins allowed by CORS; `*` allows any origin (without credentials).
    pub cors_allowed_origins: Vec<String>,
    pub body_limit_bytes: usize,
    /// Where the public key that verifies access tokens lives (PEM, Ed25519). Identity derives it
    /// from its private key instead.
    pub jwt_public_key_path: Option<String>,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    /// How long graceful shutdown waits for in-flight work before giving up.
    pub shutdown_grace_secs: u64,
    /// Kafka bootstrap servers (`host:port,...`), for services that produce or consume events.
    pub kafka_brokers: String,
    /// Partitions of the topics a service creates at start-up.
    pub kafka_topic_partitions: i32,
    /// Put before every topic name on the broker (`staging.` → `staging.orders.events`), so several
    /// stacks, or parallel tests, can share one broker. Empty by default.
    pub kafka_topic_prefix: String,
    /// How long the broker may hold a consumer's fetch that has no data (`fetch.wait.max.ms`).
    /// On Apache Kafka a fetch returns when data arrives, so this only bounds idle traffic; on
    /// tansu every fetch is held this long, so it adds up to this much to each hop and sets the
    /// idle broker's CPU (ADR 011).
    pub kafka_fetch_wait_ms: u64,
    /// A consumer with no message for this long pauses its partitions and only probes their end
    /// offsets, at intervals growing from 50 ms to `kafka_doze_probe_max_ms` (ADR 014); 0 = never.
    /// For tansu, where every fetch costs the broker the same whether data is there or not.
    pub kafka_doze_after_ms: u64,
    /// The longest interval between a dozing consumer's probes: the most a first event after a
    /// quiet spell waits before its consumer wakes. Twice this after a minute of dozing.
    pub kafka_doze_probe_max_ms: u64,
    /// Whether the outbox relay's producer is idempotent (no duplicates from its own retries).
    /// On by default in production (Apache Kafka). Off for `make up` and tests: tansu 0.6 has
    /// been seen to reset every client connection, for minutes, once an idempotent producer's
    /// records time out during an outage (docs/adr/003). Without it a retry can publish a record
    /// twice; the consumers' inbox makes the second a no-op, and per-order order holds because the
    /// relay sends an order's next event only after the previous one is acknowledged.
    pub kafka_idempotent_producer: bool,
}

/// The first interval between a dozing consumer's probes (it doubles from there).
pub const DOZE_FIRST_PROBE_MS: u64 = 50;

impl CommonConfig {
    /// How this service's consumers doze (`None`: never).
    pub fn consumer_doze(&self) -> Option<crate::consumer::Doze> {
        use std::time::Duration;
        (self.kafka_doze_after_ms > 0).then(|| crate::consumer::Doze {
            after: Duration::from_millis(self.kafka_doze_after_ms),
            first_probe: Duration::from_millis(DOZE_FIRST_PROBE_MS),
            max_probe: Duration::from_millis(self.kafka_doze_probe_max_ms),
            deep_after: crate::consumer::DOZE_DEEP_AFTER,
        })
    }

    pub fn defaults(profile: Profile, port: u16, database: &str) -> Self {
        let local = profile != Profile::Production;
        Self {
            profile,
            host: if local { "127.0.0.1" } else { "0.0.0.0" }.into(),
            port,
            database_url: Secret::new(format!("postgres://postgres@127.0.0.1:5432/{database}")),
            database_max_connections: 10,
            redis_url: Secret::new("redis://127.0.0.1:6379"),
            redis_prefix: "koupang:".into(),
            log_format: if local { "pretty" } else { "json" }.into(),
            log_level: "info,sqlx=warn,tower_http=warn".into(),
            cors_allowed_origins: if local { vec!["*".into()] } else { vec![] },
            body_limit_bytes: 256 * 1024,
            jwt_public_key_path: None,
            jwt_issuer: "koupang-identity".into(),
            jwt_audience: "koupang".into(),
            shutdown_grace_secs: 20,
            kafka_brokers: "127.0.0.1:9092".into(),
            kafka_topic_partitions: 6,
            kafka_topic_prefix: String::new(),
            // ADR 011: Apache Kafka answers a fetch when data arrives, so production waits long;
            // `make up` runs tansu, which holds every fetch for the whole wait: a compromise
            // between hop latency and the idle broker's CPU; tests want fast hops.
            // ADR 014: on tansu a short wait keeps hops fast while there is traffic, and dozing
            // stops the fetching when there is none.
            kafka_fetch_wait_ms: match profile {
                Profile::Production => 500,
                Profile::Local | Profile::Test => 5,
            },
            kafka_doze_after_ms: match profile {
                Profile::Production => 0,
                Profile::Local | Profile::Test => 2_000,
            },
            kafka_doze_probe_max_ms: match profile {
                Profile::Production | Profile::Local => 500,
                Profile::Test => 200,
            },
            kafka_idempotent_producer: profile == Profile::Production,
        }
    }

    pub fn validate(&self, errors: &mut Vec<String>) {
        if self.body_limit_bytes < 1024 {
            errors.push("body_limit_bytes must be at least 1024".into());
        }
        if self.database_max_connections == 0 {
            errors.push("database_max_connections must be at least 1".into());
        }
        if !(1..=1024).contains(&self.kafka_topic_partitions) {
            errors.push("kafka_topic_partitions must be between 1 and 1024".into());
        }
        if !(1..=30_000).contains(&self.kafka_fetch_wait_ms) {
            errors.push("kafka_fetch_wait_ms must be between 1 and 30000".into());
        }
        if self.kafka_doze_after_ms > 3_600_000 {
            errors.push("kafka_doze_after_ms must be between 0 (never) and 3600000".into());
        }
        if !(DOZE_FIRST_PROBE_MS..=60_000).contains(&self.kafka_doze_probe_max_ms) {
            errors.push(format!(
                "kafka_doze_probe_max_ms must be between {DOZE_FIRST_PROBE_MS} and 60000"
            ));
        }
        if !matches!(self.log_format.as_str(), "json" | "pretty") {
            errors.push(format!(
                "log_format must be json or pretty, not '{}'",
                self.log_format
            ));
        }
    }
}

/// A start-up configuration problem, worded for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

/// Load `T` for the service whose variables start with `prefix` (e.g. `IDENTITY`), starting from
/// `defaults`.
pub fn load<T: Serialize + DeserializeOwned>(prefix: &str, defaults: T) -> Result<T, ConfigError> {
    let file = std::env::var(format!("{prefix}_CONFIG_FILE")).ok();
    let file_text = match &file {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!("{prefix}_CONFIG_FILE: cannot read '{path}': {e}"))
        })?),
        None => None,
    };
    load_from(prefix, defaults, file_text.as_deref(), |k| {
        std::env::var(k).ok()
    })
}

/// The layering itself, with the file text and the environment passed in (so it can be tested).
pub fn load_from<T: Serialize + DeserializeOwned>(
    prefix: &str,
    defaults: T,
    file: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<T, ConfigError> {
    let mut value = serde_json::to_value(defaults)
        .map_err(|e| ConfigError(format!("defaults cannot be represented: {e}")))?;
    // Environment strings are typed by the defaults' shape, not by whatever the file put there.
    let shape = value.clone();
    if let Some(text) = file {
        let table: toml::Value =
            toml::from_str(text).map_err(|e| ConfigError(format!("config file: {e}")))?;
        let file_value =
            serde_json::to_value(table).map_err(|e| ConfigError(format!("config file: {e}")))?;
        merge(&mut value, file_value);
    }
    let (Value::Object(map), Value::Object(shape)) = (&mut value, &shape) else {
        return Err(ConfigError("a config type must be a struct".into()));
    };
    apply_env(map, shape, &format!("{prefix}_"), &env)?;
    deserialize_settings(value, prefix)
}

/// Deserialize the merged settings; a value of the wrong shape (from the file, where nothing
/// checked its type) is named by its full path and by the variable that would set it.
fn deserialize_settings<T: DeserializeOwned>(value: Value, prefix: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path.is_empty() || path == "." || path.contains('?') {
            return ConfigError(format!("{prefix}: {}", e.inner()));
        }
        let var = format!("{prefix}_{}", path.replace('.', "__").to_ascii_uppercase());
        ConfigError(format!(
            "{prefix}: setting `{path}` (variable {var}): {}",
            e.inner()
        ))
    })
}

fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn apply_env(
    map: &mut Map<String, Value>,
    shape: &Map<String, Value>,
    var_prefix: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let no_shape = Map::new();
    for (key, slot) in map.iter_mut() {
        let var = format!("{var_prefix}{}", key.to_ascii_uppercase());
        if let Value::Object(inner) = slot {
            let inner_shape = match shape.get(key) {
                Some(Value::Object(s)) => s,
                _ => &no_shape,
            };
            apply_env(inner, inner_shape, &format!("{var}__"), env)?;
            continue;
        }
        let Some(raw) = env(&var) else { continue };
        let typed_by = shape.get(key).unwrap_or(slot).clone();
        *slot = parse_like(&typed_by, &raw).map_err(|why| ConfigError(format!("{var}: {why}")))?;
    }
    Ok(())
}

/// Parse an environment string into the JSON type the default has.
fn parse_like(current: &Value, raw: &str) -> Result<Value, String> {
    let raw_t = raw.trim();
    match current {
        Value::Bool(_) => match raw_t.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Value::Bool(true)),
            "false" | "0" | "no" | "off" => Ok(Value::Bool(false)),
            _ => Err(format!("expected true or false, got '{raw}'")),
        },
        Value::Number(n) => {
            if n.is_f64() {
                raw_t
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .ok_or_else(|| format!("expected a number, got '{raw}'"))
            } else if let Ok(u) = raw_t.parse::<u64>() {
                Ok(Value::from(u))
            } else if let Ok(i) = raw_t.parse::<i64>() {
                Ok(Value::from(i))
            } else {
                Err(format!("expected a whole number, got '{raw}'"))
            }
        }
        Value::Array(_) => Ok(Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        )),
        // Strings, and options whose default is None: an empty variable means "unset".
        Value::Null if raw_t.is_empty() => Ok(Value::Null),
        _ => Ok(Value::String(raw.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Debug, Serialize, Deserialize)]
    struct Svc {
        #[serde(flatten)]
        common: CommonConfig,
        rate: f64,
        flag: bool,
        name: Option<String>,
        retry: Retry,
    }

    #[derive(Debug, Serialize, Deserialize)]
    struct Retry {
        max_attempts: u32,
    }

    fn defaults() -> Svc {
        Svc {
            common: CommonConfig::defaults(Profile::Local, 8081, "identity"),
            rate: 0.1,
            flag: false,
            name: None,
            retry: Retry { max_attempts: 3 },
        }
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        let file = "port = 9000\nhost = \"0.0.0.0\"\nrate = 0.5\n";
        let cfg: Svc = load_from(
            "SVC",
            defaults(),
            Some(file),
            env(&[("SVC_PORT", "9100"), ("SVC_FLAG", "yes"), ("SVC_NAME", "x")]),
        )
        .unwrap();
        assert_eq!(cfg.common.port, 9100, "env beats file");
        assert_eq!(cfg.common.host, "0.0.0.0", "file beats defaults");
        assert_eq!(cfg.rate, 0.5);
        assert!(cfg.flag);
        assert_eq!(cfg.name.as_deref(), Some("x"));
        assert_eq!(
            cfg.common.database_max_connections, 10,
            "untouched default stays"
        );
    }

    #[test]
    fn lists_are_comma_separated() {
        let cfg: Svc = load_from(
            "SVC",
            defaults(),
            None,
            env(&[(
                "SVC_CORS_ALLOWED_ORIGINS",
                "https://a.example, https://b.example",
            )]),
        )
        .unwrap();
        assert_eq!(
            cfg.common.cors_allowed_origins,
            ["https://a.example", "https://b.example"]
        );
    }

    #[test]
    fn a_malformed_value_names_the_variable() {
        let err =
            load_from::<Svc>("SVC", defaults(), None, env(&[("SVC_PORT", "eighty")])).unwrap_err();
        assert!(err.0.contains("SVC_PORT"), "{err}");
        let err =
            load_from::<Svc>("SVC", defaults(), None, env(&[("SVC_PORT", "70000")])).unwrap_err();
        assert!(err.0.contains("SVC"), "{err}");
    }

    #[test]
    fn the_fetch_wait_depends_on_the_profile_and_comes_from_the_environment() {
        let wait = |p| CommonConfig::defaults(p, 8081, "x").kafka_fetch_wait_ms;
        assert_eq!(
            [
                wait(Profile::Production),
                wait(Profile::Local),
                wait(Profile::Test)
            ],
            [500, 5, 5]
        );
        let cfg: Svc = load_from(
            "SVC",
            defaults(),
            None,
            env(&[("SVC_KAFKA_FETCH_WAIT_MS", "250")]),
        )
        .unwrap();
        assert_eq!(cfg.common.kafka_fetch_wait_ms, 250);
    }

    #[test]
    fn consumers_doze_on_tansu_profiles_only_and_the_environment_can_turn_it_off() {
        let doze = |p| CommonConfig::defaults(p, 8081, "x").consumer_doze();
        assert_eq!(doze(Profile::Production), None);
        let local = doze(Profile::Local).expect("local consumers doze");
        assert_eq!(local.after, std::time::Duration::from_secs(2));
        assert_eq!(local.first_probe, std::time::Duration::from_millis(50));
        assert_eq!(local.max_probe, std::time::Duration::from_millis(500));
        let off: Svc = load_from(
            "SVC",
            defaults(),
            None,
            env(&[("SVC_KAFKA_DOZE_AFTER_MS", "0")]),
        )
        .unwrap();
        assert_eq!(off.common.consumer_doze(), None);
        let slow: Svc = load_from(
            "SVC",
            defaults(),
            None,
            env(&[("SVC_KAFKA_DOZE_PROBE_MAX_MS", "2000")]),
        )
        .unwrap();
        let max = slow.common.consumer_doze().map(|z| z.max_probe);
        assert_eq!(max, Some(std::time::Duration::from_secs(2)));
    }

    #[test]
    fn a_doze_probe_shorter_than_the_first_probe_or_over_a_minute_is_refused() {
        for ms in [10, 60_001] {
            let mut c = CommonConfig::defaults(Profile::Local, 8081, "x");
            c.kafka_doze_probe_max_ms = ms;
            let mut errors = vec![];
            c.validate(&mut errors);
            assert!(
                errors.iter().any(|e| e.contains("kafka_doze_probe_max_ms")),
                "{ms}: {errors:?}"
            );
        }
        let mut errors = vec![];
        CommonConfig::defaults(Profile::Local, 8081, "x").validate(&mut errors);
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn a_fetch_wait_of_zero_or_over_thirty_seconds_is_refused() {
        for (ms, refused) in [(0, true), (1, false), (30_000, false), (30_001, true)] {
            let mut c = CommonConfig::defaults(Profile::Local, 8081, "x");
            c.kafka_fetch_wait_ms = ms;
            let mut errors = Vec::new();
            c.validate(&mut errors);
            let named = errors.iter().any(|e| e.contains("kafka_fetch_wait_ms"));
            assert_eq!(named, refused, "{ms} ms: {errors:?}");
        }
    }

    #[test]
    fn a_file_value_of_the_wrong_shape_names_its_full_path_and_variable() {
        let file = "[retry]\nmax_attempts = \"many\"\n";
        let err = load_from::<Svc>("SVC", defaults(), Some(file), env(&[])).unwrap_err();
        assert!(err.0.contains("`retry.max_attempts`"), "{err}");
        assert!(err.0.contains("SVC_RETRY__MAX_ATTEMPTS"), "{err}");
        let cfg: Svc = load_from(
            "SVC",
            defaults(),
            Some(file),
            env(&[("SVC_RETRY__MAX_ATTEMPTS", "7")]),
        )
        .unwrap();
        assert_eq!(cfg.retry.max_attempts, 7, "the named variable fixes it");
    }

    #[test]
    fn the_relay_producer_is_idempotent_in_production_only_unless_set() {
        let idempotent = |p| CommonConfig::defaults(p, 8081, "x").kafka_idempotent_producer;
        assert_eq!(
            [Profile::Production, Profile::Local, Profile::Test].map(idempotent),
            [true, false, false]
        );
        let cfg: Svc = load_from(
            "SVC",
            defaults(),
            None,
            env(&[("SVC_KAFKA_IDEMPOTENT_PRODUCER", "true")]),
        )
        .unwrap();
        assert!(cfg.common.kafka_idempotent_producer);
    }

    #[test]
    fn secrets_are_not_printed_by_debug() {
        let s = Secret::new("postgres://u:hunter2@db/x");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
