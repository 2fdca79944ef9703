//! The payment gateway: the provider's four operations, each with an idempotency key (a repeated
//! call with a key returns the first call's answer and moves no money again), and a mock that
//! behaves like a provider's test mode.
//!
//! Mock tokens: `tok_visa` succeeds; `tok_decline` is declined (`card_declined`); `tok_timeout`
//! fails retryably `mock_timeout_failures` times per operation, then succeeds; anything else is
//! declined as `invalid_payment_method`. The mock keeps its answers in its own tables of the
//! payment database (`mock_gateway_*`), as a provider keeps them on its side: keys are honoured
//! across restarts and replicas.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use rust_decimal::Decimal;
use sqlx::PgPool;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Authorize,
    Capture,
    Void,
    Refund,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Authorize => "authorize",
            Operation::Capture => "capture",
            Operation::Void => "void",
            Operation::Refund => "refund",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Operation::Authorize,
            Operation::Capture,
            Operation::Void,
            Operation::Refund,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// What the provider needs for one call.
#[derive(Debug, Clone)]
pub struct GatewayRequest {
    pub operation: Operation,
    pub idempotency_key: String,
    pub payment_method: String,
    pub amount: Decimal,
    pub currency: String,
    /// The authorization's reference (capture, void, refund).
    pub reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayOutcome {
    Succeeded {
        reference: String,
    },
    /// Final: the provider said no (`card_declined`, `invalid_payment_method`, ...).
    Declined {
        code: String,
    },
    /// Try again later (timeout, 5xx, rate limit).
    Retryable {
        error: String,
    },
}

pub type GatewayFuture<'a> = Pin<Box<dyn Future<Output = GatewayOutcome> + Send + 'a>>;

pub trait PaymentGateway: Send + Sync + 'static {
    fn call<'a>(&'a self, request: &'a GatewayRequest) -> GatewayFuture<'a>;
}

pub struct MockGateway {
    db: PgPool,
    timeout_failures: u32,
    latency: Duration,
    failure_rate: f64,
}

impl MockGateway {
    pub fn new(db: PgPool, timeout_failures: u32, latency: Duration, failure_rate: f64) -> Self {
        Self {
            db,
            timeout_failures,
            latency,
            failure_rate,
        }
    }

    /// Money-moving operations the mock has performed (not counting replays): what a provider's
    /// dashboard would show as charges.
    pub async fn charges(db: &PgPool, operation: Operation) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT count(*) FROM mock_gateway_operations WHERE operation = $1 AND outcome = 'succeeded'",
        )
        .bind(operation.as_str())
        .fetch_one(db)
        .await
    }

    async fn answer(&self, req: &GatewayRequest) -> Result<GatewayOutcome, sqlx::Error> {
        if let Some(stored) = self.stored(&req.idempotency_key).await? {
            return Ok(stored);
        }
        if self.failure_rate > 0.0 && fastrand::f64() < self.failure_rate {
            return Ok(GatewayOutcome::Retryable {
                error: "mock: injected failure".into(),
            });
        }
        let (outcome, code) = match req.payment_method.as_str() {
            "tok_visa" => ("succeeded", None),
            "tok_timeout" => {
                let failures: i32 = sqlx::query_scalar(
                    "INSERT INTO mock_gateway_failures (idempotency_key, failures) VALUES ($1, 1)
                     ON CONFLICT (idempotency_key)
                     DO UPDATE SET failures = mock_gateway_failures.failures + 1
                     RETURNING failures",
                )
                .bind(&req.idempotency_key)
                .fetch_one(&self.db)
                .await?;
                if failures as i64 <= i64::from(self.timeout_failures) {
                    return Ok(GatewayOutcome::Retryable {
                        error: format!(
                            "mock: gateway timeout ({failures} of {})",
                            self.timeout_failures
                        ),
                    });
                }
                ("succeeded", None)
            }
            "tok_decline" if req.operation == Operation::Authorize => {
                ("declined", Some("card_declined"))
            }
            "tok_decline" => ("succeeded", None),
            _ => ("declined", Some("invalid_payment_method")),
        };
        let reference = (outcome == "succeeded").then(|| match (&req.reference, req.operation) {
            (Some(r), Operation::Capture) => format!("{r}_cap"),
            (Some(r), Operation::Void) => format!("{r}_void"),
            (Some(r), Operation::Refund) => format!("{r}_ref"),
            _ => format!("mock_{}", uuid::Uuid::now_v7().simple()),
        });
        // The first answer for a key wins, also between replicas calling at once.
        sqlx::query(
            "INSERT INTO mock_gateway_operations
                 (idempotency_key, operation, outcome, reference, decline_code, amount)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(&req.idempotency_key)
        .bind(req.operation.as_str())
        .bind(outcome)
        .bind(&reference)
        .bind(code)
        .bind(req.amount)
        .execute(&self.db)
        .await?;
        Ok(self
            .stored(&req.idempotency_key)
            .await?
            .unwrap_or(GatewayOutcome::Retryable {
                error: "mock: answer lost".into(),
            }))
    }

    async fn stored(&self, key: &str) -> Result<Option<GatewayOutcome>, sqlx::Error> {
        let row: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT outcome, reference, decline_code FROM mock_gateway_operations WHERE idempotency_key = $1",
        )
        .bind(key)
        .fetch_optional(&self.db)
        .await?;
        Ok(
            row.map(|(outcome, reference, code)| match outcome.as_str() {
                "succeeded" => GatewayOutcome::Succeeded {
                    reference: reference.unwrap_or_default(),
                },
                _ => GatewayOutcome::Declined {
                    code: code.unwrap_or_else(|| "declined".into()),
                },
            }),
        )
    }
}

impl PaymentGateway for MockGateway {
    fn call<'a>(&'a self, request: &'a GatewayRequest) -> GatewayFuture<'a> {
        Box::pin(async move {
            if !self.latency.is_zero() {
                tokio::time::sleep(self.latency).await;
            }
            match self.answer(request).await {
                Ok(outcome) => outcome,
                Err(e) => {
                    // The attempt's error is shown to the buyer: the cause stays in the log.
                    tracing::warn!(error = %e, key = %request.idempotency_key, "mock gateway storage failed");
                    GatewayOutcome::Retryable {
                        error: "mock: gateway storage unavailable".into(),
                    }
                }
            }
        })
    }
}
