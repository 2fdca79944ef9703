//! Order's settings: the common ones, where the catalog and the cart are, the payment deadline and
//! its sweeper. Environment variables are `ORDER_<FIELD>` (see `.env.example`).

use serde::{Deserialize, Serialize};
use shared::config::{CommonConfig, ConfigError, Profile};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderConfig {
    #[serde(flatten)]
    pub common: CommonConfig,
    /// Base URL of the catalog (batch SKU lookup: prices, names, sellers at placement).
    pub catalog_url: String,
    /// How long a catalog call may take before placement answers `503 CATALOG_UNAVAILABLE`.
    pub catalog_timeout_ms: u64,
    /// Base URL of the cart (`from_cart` placement reads the buyer's cart with their token).
    pub cart_url: String,
    pub cart_timeout_ms: u64,
    /// An order still unpaid (`pending`, `awaiting_payment`) this long after placement is
    /// cancelled with reason `payment_timeout`.
    pub payment_timeout_secs: u64,
    /// How often the deadline sweeper looks for due orders.
    pub deadline_sweep_interval_ms: u64,
    /// How many due orders one sweep claims (`FOR UPDATE SKIP LOCKED`) per transaction.
    pub deadline_sweep_batch: u32,
    /// Consumer group of the saga handlers on `catalog.events` and `payments.events`.
    pub consumer_group: String,
    /// `POST /orders` answers `503 ORDERS_BUSY` while this many orders are unpaid (`pending`,
    /// `awaiting_payment`); 0 = no limit. Sheds an overload at the door (orders/admission.rs).
    pub max_orders_in_flight: u64,
    /// How often the count of unpaid orders is read (at most), for `max_orders_in_flight`.
    pub admission_refresh_ms: u64,
}

impl OrderConfig {
    pub fn defaults(profile: Profile) -> Self {
        Self {
            common: CommonConfig::defaults(profile, 8084, "orders"),
            catalog_url: "http://127.0.0.1:8082".into(),
            catalog_timeout_ms: 2000,
            cart_url: "http://127.0.0.1:8083".into(),
            cart_timeout_ms: 2000,
            payment_timeout_secs: 900,
            deadline_sweep_interval_ms: 1000,
            deadline_sweep_batch: 100,
            consumer_group: "order-saga".into(),
            // The local stack confirms ~15-18 orders/s (docs/benchmarks.md): 50 unpaid orders
            // are ~3 s of work (200 gave p50 12 s under overload). Tests set their own limit.
            max_orders_in_flight: match profile {
                Profile::Production => 20_000,
                Profile::Local => 50,
                Profile::Test => 0,
            },
            admission_refresh_ms: 100,
        }
    }

    /// Defaults for the profile in the environment, then the file, then the environment.
    pub fn load() -> Result<Self, ConfigError> {
        let profile = Profile::from_env("ORDER")?;
        let config = shared::config::load("ORDER", Self::defaults(profile))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        self.common.validate(&mut errors);
        if self.common.jwt_public_key_path.is_none() {
            errors.push(
                "ORDER_JWT_PUBLIC_KEY_PATH is required: buyers, sellers and admins are identified \
                 by tokens signed by identity (scripts/gen-keys.sh makes the key pair)"
                    .into(),
            );
        }
        for (name, url) in [
            ("catalog_url", &self.catalog_url),
            ("cart_url", &self.cart_url),
        ] {
            if url::Url::parse(url)
                .map(|u| !matches!(u.scheme(), "http" | "https"))
                .unwrap_or(true)
            {
                errors.push(format!("{name} must be an http(s) URL, not '{url}'"));
            }
        }
        if self.admission_refresh_ms > 10_000 {
            errors.push("admission_refresh_ms must be at most 10000".into());
        }
        for (name, ms) in [
            ("catalog_timeout_ms", self.catalog_timeout_ms),
            ("cart_timeout_ms", self.cart_timeout_ms),
        ] {
            if !(100..=30_000).contains(&ms) {
                errors.push(format!("{name} must be between 100 and 30000"));
            }
        }
        if !(1..=7 * 86_400).contains(&self.payment_timeout_secs) {
            errors.push("payment_timeout_secs must be between 1 and 604800 (7 days)".into());
        }
        if !(10..=60_000).contains(&self.deadline_sweep_interval_ms) {
            errors.push("deadline_sweep_interval_ms must be between 10 and 60000".into());
        }
        if !(1..=1000).contains(&self.deadline_sweep_batch) {
            errors.push("deadline_sweep_batch must be between 1 and 1000".into());
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
    fn defaults_are_the_contract_and_need_a_public_key() {
        let c = OrderConfig::defaults(Profile::Local);
        assert_eq!(c.common.port, 8084);
        assert_eq!(c.payment_timeout_secs, 900);
        let err = c.validate().unwrap_err();
        assert!(err.0.contains("ORDER_JWT_PUBLIC_KEY_PATH"), "{err}");
    }

    #[test]
    fn a_bad_catalog_url_and_a_zero_timeout_are_named() {
        let mut c = OrderConfig::defaults(Profile::Local);
        c.common.jwt_public_key_path = Some("k.pem".into());
        c.catalog_url = "catalog:8082".into();
        c.payment_timeout_secs = 0;
        let err = c.validate().unwrap_err();
        assert!(err.0.contains("catalog_url"), "{err}");
        assert!(err.0.contains("payment_timeout_secs"), "{err}");
    }
}
