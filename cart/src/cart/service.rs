//! Cart rules: quantities 1–max, prices from the catalog, availability checked on add and on
//! quantity change, and the re-check of every line on `/validate`.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use shared::auth::{AuthUser, Role};
use shared::money::Currency;
use uuid::Uuid;

use super::dto::*;
use super::store::{AddResult, CartStore, Snapshot, StoredLine};
use crate::error::{CartError, Result};
use crate::startup::AppState;
use shared::catalog_client::SkuInfo;

/// The buyer whose cart this is: only buyers have carts.
pub fn buyer(caller: &AuthUser) -> Result<Uuid> {
    caller.require(&[Role::Buyer])?;
    Ok(caller.id)
}

fn check_quantity(store: &CartStore, quantity: i64) -> Result<u32> {
    let max = store.max_quantity();
    match u32::try_from(quantity) {
        Ok(q) if q >= 1 && q <= max => Ok(q),
        _ => Err(CartError::QuantityLimit {
            max,
            would_be: quantity,
        }),
    }
}

fn money(amount: Decimal, currency: Currency) -> String {
    shared::money::rounded(amount, currency).to_string()
}

pub fn view(lines: Vec<StoredLine>) -> CartView {
    let mut totals: BTreeMap<Currency, Decimal> = BTreeMap::new();
    let mut item_count = 0u32;
    let items = lines
        .into_iter()
        .map(|l| {
            let unit = l.snapshot.unit_price;
            let currency = l.snapshot.currency;
            let line_total = unit * Decimal::from(l.quantity);
            *totals.entry(currency).or_default() += line_total;
            item_count = item_count.saturating_add(l.quantity);
            CartLine {
                sku_id: l.sku_id,
                product_id: l.snapshot.product_id,
                product_name: l.snapshot.product_name,
                image_url: l.snapshot.image_url,
                quantity: l.quantity,
                line_total: money(line_total, currency),
                unit_price: money(unit, currency),
                currency: currency.to_string(),
            }
        })
        .collect();
    CartView {
        items,
        totals: totals
            .into_iter()
            .map(|(currency, amount)| Total {
                amount: money(amount, currency),
                currency: currency.to_string(),
            })
            .collect(),
        item_count,
    }
}

pub async fn get(state: &AppState, buyer: Uuid) -> Result<CartView> {
    Ok(view(state.store.lines(buyer).await?))
}

/// The catalog's current word on one SKU, which must be for sale.
async fn buyable(state: &AppState, sku: Uuid) -> Result<SkuInfo> {
    let info = state
        .catalog
        .lookup(&[sku])
        .await?
        .into_iter()
        .find(|s| s.id == sku)
        .ok_or(CartError::SkuNotFound)?;
    if info.status != "active" {
        return Err(CartError::SkuUnavailable);
    }
    Ok(info)
}

#[tracing::instrument(skip_all, fields(buyer_id = %buyer, sku_id = %input.sku_id))]
pub async fn add(state: &AppState, buyer: Uuid, input: AddItem) -> Result<CartView> {
    let units = check_quantity(&state.store, input.quantity)?;
    let info = buyable(state, input.sku_id).await?;
    let already = state.store.quantity(buyer, input.sku_id).await?;
    let wanted = i64::from(already) + i64::from(units);
    if wanted > info.available {
        return Err(CartError::InsufficientStock {
            available: info.available,
            requested: wanted,
        });
    }
    let snapshot = Snapshot {
        product_id: info.product_id,
        product_name: info.product_name,
        image_url: info.image_url,
        unit_price: info.price,
        currency: info.currency,
    };
    match state
        .store
        .add(buyer, input.sku_id, units, &snapshot)
        .await?
    {
        AddResult::Added(_) => {}
        AddResult::CartFull => {
            return Err(CartError::TooManyLines {
                max: state.config.max_lines,
            })
        }
        AddResult::OverQuantity(n) => {
            return Err(CartError::QuantityLimit {
                max: state.store.max_quantity(),
                would_be: n,
            })
        }
    }
    metrics::counter!("cart_items_added_total").increment(1);
    get(state, buyer).await
}

#[tracing::instrument(skip_all, fields(buyer_id = %buyer, sku_id = %sku))]
pub async fn set(state: &AppState, buyer: Uuid, sku: Uuid, input: SetQuantity) -> Result<CartView> {
    let quantity = check_quantity(&state.store, input.quantity)?;
    if state.store.quantity(buyer, sku).await? == 0 {
        return Err(CartError::LineNotFound);
    }
    let info = buyable(state, sku).await?;
    if i64::from(quantity) > info.available {
        return Err(CartError::InsufficientStock {
            available: info.available,
            requested: i64::from(quantity),
        });
    }
    if !state.store.set(buyer, sku, quantity).await? {
        return Err(CartError::LineNotFound);
    }
    get(state, buyer).await
}

pub async fn remove(state: &AppState, buyer: Uuid, sku: Uuid) -> Result<CartView> {
    if !state.store.remove(buyer, sku).await? {
        return Err(CartError::LineNotFound);
    }
    get(state, buyer).await
}

pub async fn clear(state: &AppState, buyer: Uuid) -> Result<()> {
    Ok(state.store.clear(buyer).await?)
}

/// Re-check every line against the catalog now.
#[tracing::instrument(skip_all, fields(buyer_id = %buyer))]
pub async fn validate(state: &AppState, buyer: Uuid) -> Result<Validation> {
    let lines = state.store.lines(buyer).await?;
    let ids: Vec<Uuid> = lines.iter().map(|l| l.sku_id).collect();
    let current: BTreeMap<Uuid, SkuInfo> = state
        .catalog
        .lookup(&ids)
        .await?
        .into_iter()
        .map(|s| (s.id, s))
        .collect();
    let items: Vec<ValidatedLine> = lines
        .into_iter()
        .map(|l| {
            let snapshot_price = l.snapshot.unit_price;
            let now = current.get(&l.sku_id);
            let status = match now {
                None => LineStatus::Unavailable,
                Some(s) if s.status != "active" => LineStatus::Unavailable,
                Some(s) if s.price != snapshot_price || s.currency != l.snapshot.currency => {
                    LineStatus::PriceChanged
                }
                Some(s) if s.available < i64::from(l.quantity) => LineStatus::InsufficientStock,
                Some(_) => LineStatus::Ok,
            };
            ValidatedLine {
                sku_id: l.sku_id,
                status,
                quantity: l.quantity,
                snapshot_price: money(snapshot_price, l.snapshot.currency),
                current_price: now.map(|s| money(s.price, s.currency)),
                currency: l.snapshot.currency.to_string(),
                available: now.map_or(0, |s| s.available.max(0)),
            }
        })
        .collect();
    Ok(Validation {
        valid: items.iter().all(|i| i.status == LineStatus::Ok),
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sku: Uuid, q: u32, price: &str, currency: &str, added: i64) -> StoredLine {
        StoredLine {
            sku_id: sku,
            quantity: q,
            snapshot: Snapshot {
                product_id: Uuid::nil(),
                product_name: "x".into(),
                image_url: None,
                unit_price: price.parse().unwrap(),
                currency: currency.parse().unwrap(),
            },
            added_ms: added,
        }
    }

    #[test]
    fn totals_are_per_currency_with_the_currency_decimals() {
        let v = view(vec![
            line(Uuid::now_v7(), 3, "19.99", "USD", 1),
            line(Uuid::now_v7(), 1, "0.02", "USD", 2),
            line(Uuid::now_v7(), 2, "1500", "KRW", 3),
        ]);
        assert_eq!(v.item_count, 6);
        assert_eq!(v.items[0].line_total, "59.97");
        let totals: Vec<(String, String)> = v
            .totals
            .iter()
            .map(|t| (t.currency.clone(), t.amount.clone()))
            .collect();
        assert_eq!(
            totals,
            vec![
                ("KRW".into(), "3000".into()),
                ("USD".into(), "59.99".into())
            ]
        );
    }
}
