//! Catalog's settings: the common ones plus the product cache. Environment variables are
//! `CATALOG_<FIELD>` (see `.env.example`).

use serde::{Deserialize, Serialize};
use shared::config::{CommonConfig, ConfigError, Profile};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatalogConfig {
    #[serde(flatten)]
    pub common: CommonConfig,
    /// How long a cached product detail may live. Writes drop the entry at once; the TTL only
    /// bounds the rare race where a slow reader re-fills the cache with what it read before a write.
    pub cache_ttl_secs: u64,
    /// Turn the product cache off (every read goes to Postgres).
    pub cache_enabled: bool,
    /// Consumer group of the inventory handlers on `orders.events`.
    pub consumer_group: String,
    /// Run the inventory consumer in this process (off: an API-only replica; reservations are
    /// made by the replicas that run it).
    pub inventory_consumer_enabled: bool,
}

impl CatalogConfig {
    pub fn defaults(profile: Profile) -> Self {
        Self {
            common: CommonConfig::defaults(profile, 8082, "catalog"),
            cache_ttl_secs: 300,
            cache_enabled: true,
            consumer_group: "catalog-inventory".into(),
            inventory_consumer_enabled: true,
        }
    }

    /// Defaults for the profile in the environment, then the file, then the environment.
    pub fn load() -> Result<Self, ConfigError> {
        let profile = Profile::from_env("CATALOG")?;
        let config = shared::config::load("CATALOG", Self::defaults(profile))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        self.common.validate(&mut errors);
        if self.common.jwt_public_key_path.is_none() {
            errors.push(
                "CATALOG_JWT_PUBLIC_KEY_PATH is required: sellers and admins write with tokens \
                 signed by identity (scripts/gen-keys.sh makes the key pair)"
                    .into(),
            );
        }
        if !(1..=86_400).contains(&self.cache_ttl_secs) {
            errors.push("cache_ttl_secs must be between 1 and 86400".into());
        }
        if self.consumer_group.trim().is_empty() {
            errors.push("consumer_group must not be empty".into());
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
    fn a_missing_public_key_is_a_clear_start_up_error() {
        let err = CatalogConfig::defaults(Profile::Local)
            .validate()
            .unwrap_err();
        assert!(err.0.contains("CATALOG_JWT_PUBLIC_KEY_PATH"), "{err}");
    }
}
