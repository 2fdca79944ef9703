//! The catalog's batch SKU lookup (`GET /api/v1/skus?ids=`), the only source of prices, names,
//! sellers and availability for the cart and for order placement. Any failure to get an answer
//! (refused, timed out, a 5xx, an unreadable body) is `CatalogUnavailable`, which callers answer
//! with `503 CATALOG_UNAVAILABLE`.

use std::time::Duration;

use rust_decimal::Decimal;
use serde::Deserialize;
use uuid::Uuid;

/// What the catalog says about a SKU now.
#[derive(Debug, Clone, Deserialize)]
pub struct SkuInfo {
    pub id: Uuid,
    pub product_id: Uuid,
    pub product_name: String,
    pub seller_id: Uuid,
    #[serde(with = "rust_decimal::serde::str")]
    pub price: Decimal,
    pub currency: crate::money::Currency,
    /// `active` when buyable.
    pub status: String,
    pub available: i64,
    pub image_url: Option<String>,
}

#[derive(Deserialize)]
struct Lookup {
    items: Vec<SkuInfo>,
}

/// The catalog could not be asked (the cause is for the log, never for the client).
#[derive(Debug, thiserror::Error)]
#[error("catalog unavailable: {0:#}")]
pub struct CatalogUnavailable(pub anyhow::Error);

#[derive(Clone)]
pub struct CatalogClient {
    http: reqwest::Client,
    base: String,
    /// The calling service, a label of `catalog_lookups_total`.
    caller: &'static str,
}

impl CatalogClient {
    pub fn new(caller: &'static str, base: &str, timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            caller,
        })
    }

    /// The SKUs among `ids` that the catalog sells (unknown ones are absent). At most 100 ids.
    pub async fn lookup(&self, ids: &[Uuid]) -> Result<Vec<SkuInfo>, CatalogUnavailable> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let mut req = self
            .http
            .get(format!("{}/api/v1/skus", self.base))
            .query(&[("ids", list.join(","))]);
        if let Some(id) = crate::request_id::current() {
            req = req.header("x-request-id", id);
        }
        let unavailable = CatalogUnavailable;
        let resp = req
            .send()
            .await
            .map_err(|e| unavailable(anyhow::anyhow!("catalog lookup: {e}")))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(unavailable(anyhow::anyhow!(
                "catalog lookup answered {status}: {body}"
            )));
        }
        let body: Lookup = resp
            .json()
            .await
            .map_err(|e| unavailable(anyhow::anyhow!("catalog lookup body: {e}")))?;
        metrics::counter!("catalog_lookups_total", "caller" => self.caller).increment(1);
        Ok(body.items)
    }
}
