//! Payment's settings: the common ones, the commission, the retry schedule of gateway calls, the
//! worker, and the mock gateway. Environment variables are `PAYMENT_<FIELD>` (see `.env.example`).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use shared::config::{CommonConfig, ConfigError, Profile};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentConfig {
    #[serde(flatten)]
    pub common: CommonConfig,
    /// The platform's share of each seller's subtotal at capture (`0.10` = 10 %).
    pub commission_rate: Decimal,
    /// Gateway calls of an authorization before the payment fails with `gateway_unavailable`.
    pub authorize_max_attempts: u32,
    /// Gateway calls of a capture before the hold is voided and `PaymentCaptureFailed` published.
    pub capture_max_attempts: u32,
    /// First retry delay of a gateway call; it doubles per attempt (with jitter) up to the max.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// Run the gateway worker in this process (off: an API-and-consumer-only replica; calls are
    /// made by replicas that run it).
    pub worker_enabled: bool,
    /// How often the worker looks for due gateway calls when nothing woke it.
    pub worker_interval_ms: u64,
    /// Gateway calls one worker claims at a time.
    pub worker_batch: u32,
    /// How long a claimed call is this worker's; after that another may take it over. Longer
    /// than any gateway call may take (`gateway_timeout_ms`).
    pub claim_lease_secs: u64,
    /// A gateway call that takes longer is a retryable failure.
    pub gateway_timeout_ms: u64,
    /// Mock gateway: times `tok_timeout` fails retryably per operation before it succeeds.
    pub mock_timeout_failures: u32,
    /// Mock gateway: latency of every call.
    pub mock_latency_ms: u64,
    /// Mock gateway: share of calls (0–1) that fail retryably at random (chaos runs).
    pub mock_failure_rate: f64,
    /// Consumer group of the payment handlers on `orders.events`.
    pub consumer_group: String,
}

impl PaymentConfig {
    pub fn defaults(profile: Profile) -> Self {
        Self {
            common: CommonConfig::defaults(profile, 8085, "payment"),
            commission_rate: Decimal::new(10, 2),
            authorize_max_attempts: 5,
            capture_max_attempts: 5,
            retry_base_ms: 500,
            retry_max_ms: 60_000,
            worker_enabled: true,
            worker_interval_ms: 500,
            worker_batch: 20,
            claim_lease_secs: 30,
            gateway_timeout_ms: 10_000,
            mock_timeout_failures: 2,
            mock_latency_ms: 0,
            mock_failure_rate: 0.0,
            consumer_group: "payment-saga".into(),
        }
    }

    /// Defaults for the profile in the environment, then the file, then the environment.
    pub fn load() -> Result<Self, ConfigError> {
        let profile = Profile::from_env("PAYMENT")?;
        let config = shared::config::load("PAYMENT", Self::defaults(profile))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        self.common.validate(&mut errors);
        if self.common.jwt_public_key_path.is_none() {
            errors.push(
                "PAYMENT_JWT_PUBLIC_KEY_PATH is required: buyers and admins are identified by \
                 tokens signed by identity (scripts/gen-keys.sh makes the key pair)"
                    .into(),
            );
        }
        if self.commission_rate < Decimal::ZERO || self.commission_rate >= Decimal::ONE {
            errors.push("commission_rate must be at least 0 and below 1".into());
        }
        if !(1..=100).contains(&self.authorize_max_attempts)
            || !(1..=100).contains(&self.capture_max_attempts)
        {
            errors.push("authorize_max_attempts and capture_max_attempts must be 1 to 100".into());
        }
        if self.retry_base_ms == 0 || self.retry_max_ms < self.retry_base_ms {
            errors.push("retry_base_ms must be at least 1 and at most retry_max_ms".into());
        }
        if !(10..=60_000).contains(&self.worker_interval_ms) {
            errors.push("worker_interval_ms must be between 10 and 60000".into());
        }
        if !(1..=500).contains(&self.worker_batch) {
            errors.push("worker_batch must be between 1 and 500".into());
        }
        if self.claim_lease_secs * 1000 <= self.gateway_timeout_ms {
            errors.push(
                "claim_lease_secs must be longer than gateway_timeout_ms: a call still running \
                 when its lease ends could be made twice"
                    .into(),
            );
        }
        if !(0.0..=1.0).contains(&self.mock_failure_rate) {
            errors.push("mock_failure_rate must be between 0 and 1".into());
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
    fn defaults_follow_the_contract_and_need_a_public_key() {
        let c = PaymentConfig::defaults(Profile::Local);
        assert_eq!(c.common.port, 8085);
        assert_eq!(c.commission_rate, Decimal::new(10, 2));
        assert_eq!(c.mock_timeout_failures, 2);
        let err = c.validate().unwrap_err();
        assert!(err.0.contains("PAYMENT_JWT_PUBLIC_KEY_PATH"), "{err}");
    }

    #[test]
    fn a_lease_shorter_than_a_gateway_call_is_refused() {
        let mut c = PaymentConfig::defaults(Profile::Local);
        c.common.jwt_public_key_path = Some("k.pem".into());
        c.claim_lease_secs = 5;
        c.gateway_timeout_ms = 10_000;
        let err = c.validate().unwrap_err();
        assert!(err.0.contains("claim_lease_secs"), "{err}");
    }
}
