//! The buyer's cart, read from the cart service with the buyer's own token (`from_cart`
//! placement). Any failure to get an answer is `CartUnavailable` (`503`), and nothing is ordered.

use std::time::Duration;

use serde::Deserialize;
use uuid::Uuid;

use crate::error::{OrderError, Result};

#[derive(Deserialize)]
struct CartLine {
    sku_id: Uuid,
    quantity: i64,
}

#[derive(Deserialize)]
struct CartView {
    items: Vec<CartLine>,
}

#[derive(Clone)]
pub struct CartClient {
    http: reqwest::Client,
    base: String,
}

impl CartClient {
    pub fn new(base: &str, timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// The (SKU, quantity) lines of the cart of the token's owner.
    pub async fn lines(&self, bearer: &str) -> Result<Vec<(Uuid, i64)>> {
        let mut req = self
            .http
            .get(format!("{}/api/v1/cart", self.base))
            .bearer_auth(bearer);
        if let Some(id) = shared::request_id::current() {
            req = req.header("x-request-id", id);
        }
        let unavailable = |e: String| OrderError::CartUnavailable(anyhow::anyhow!(e));
        let resp = req
            .send()
            .await
            .map_err(|e| unavailable(format!("cart: {e}")))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(unavailable(format!("cart answered {status}: {body}")));
        }
        let cart: CartView = resp
            .json()
            .await
            .map_err(|e| unavailable(format!("cart body: {e}")))?;
        Ok(cart
            .items
            .into_iter()
            .map(|l| (l.sku_id, l.quantity))
            .collect())
    }
}
