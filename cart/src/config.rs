//! Cart's settings: the common ones plus where the catalog is and the cart's limits.
//! Environment variables are `CART_<FIELD>` (see `.env.example`).

use serde::{Deserialize, Serialize};
use shared::config::{CommonConfig, ConfigError, Profile};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CartConfig {
    #[serde(flatten)]
    pub common: CommonConfig,
    /// Base URL of the catalog service (batch SKU lookup).
    pub catalog_url: String,
    /// How long a catalog call may take before the cart answers `503`.
    pub catalog_timeout_ms: u64,
    /// A cart untouched this long expires (every write restarts the clock).
    pub cart_ttl_secs: u64,
    pub max_lines: u32,
    pub max_quantity: u32,
    /// Consumer group of the order-confirmed consumer on `orders.events`.
    pub consumer_group: String,
}

impl CartConfig {
    pub fn defaults(profile: Profile) -> Self {
        Self {
            // Cart keeps nothing in Postgres; the database URL of the common settings is unused.
            common: CommonConfig::defaults(profile, 8083, "cart"),
            catalog_url: "http://127.0.0.1:8082".into(),
            catalog_timeout_ms: 2000,
            cart_ttl_secs: 30 * 24 * 3600,
            max_lines: 50,
            max_quantity: 99,
            consumer_group: "cart-orders".into(),
        }
    }

    /// Defaults for the profile in the environment, then the file, then the environment.
    pub fn load() -> Result<Self, ConfigError> {
        let profile = Profile::from_env("CART")?;
        let config = shared::config::load("CART", Self::defaults(profile))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        self.common.validate(&mut errors);
        if self.common.jwt_public_key_path.is_none() {
            errors.push(
                "CART_JWT_PUBLIC_KEY_PATH is required: buyers are identified by tokens signed by \
                 identity (scripts/gen-keys.sh makes the key pair)"
                    .into(),
            );
        }
        if !(self.catalog_url.starts_with("http://") || self.catalog_url.starts_with("https://")) {
            errors.push(format!(
                "catalog_url must be an http(s) URL, not '{}'",
                self.catalog_url
            ));
        }
        if !(100..=30_000).contains(&self.catalog_timeout_ms) {
            errors.push("catalog_timeout_ms must be between 100 and 30000".into());
        }
        if self.cart_ttl_secs == 0 {
            errors.push("cart_ttl_secs must be at least 1".into());
        }
        if !(1..=100).contains(&self.max_lines) {
            errors.push("max_lines must be between 1 and 100 (one catalog lookup)".into());
        }
        if self.max_quantity == 0 {
            errors.push("max_quantity must be at least 1".into());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(errors.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_spec_limits_and_need_a_public_key() {
        let c = CartConfig::defaults(Profile::Local);
        assert_eq!((c.max_lines, c.max_quantity), (50, 99));
        assert_eq!(c.cart_ttl_secs, 30 * 24 * 3600);
        let err = c.validate().unwrap_err();
        assert!(err.0.contains("CART_JWT_PUBLIC_KEY_PATH"), "{err}");
    }
}
