//! What the order API does: placement (idempotent, priced by the catalog), the reads with their
//! visibility rules, and the buyer's, seller's and admin's actions. Status changes go through
//! `repository::transition` and write their events to the outbox in the same transaction.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use shared::auth::{AuthUser, Role};
use shared::events::{
    CancelReason, EventMeta, OrderCancelled, OrderCreated, OrderLine, SkuQuantity,
};
use shared::money::Currency;
use shared::pagination::Page;
use shared::FieldError;
use uuid::Uuid;

use super::domain::{PaymentStatus, Status};
use super::dto::*;
use super::repository::{self as repo, Applied, ItemRow, NewLine, NewOrder, OrderRow, Transition};
use crate::error::{OrderError, Result, UnavailableLine};
use crate::startup::AppState;

pub const SOURCE: &str = "order";
pub const MAX_LINES: usize = 50;
pub const MAX_QUANTITY: i64 = 99;
const MAX_TEXT: usize = 200;

/// The `Idempotency-Key` header: 1–255 printable ASCII characters (spaces allowed inside).
pub fn idempotency_key(value: Option<&axum::http::HeaderValue>) -> Result<String> {
    let v = value.ok_or(OrderError::IdempotencyKeyRequired)?;
    let s = v.to_str().map_err(|_| OrderError::IdempotencyKeyInvalid)?;
    let ok = (1..=255).contains(&s.len())
        && s.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && !s.trim().is_empty();
    if ok {
        Ok(s.to_owned())
    } else {
        Err(OrderError::IdempotencyKeyInvalid)
    }
}

/// A placement request after validation: lines merged per SKU (in SKU order), the address
/// trimmed and its country upper-cased. Its digest is what "the same body" means for a retry.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Placement {
    pub from_cart: bool,
    pub lines: Vec<(Uuid, i64)>,
    pub shipping_address: ShippingAddress,
    pub payment_method: String,
}

impl Placement {
    pub fn digest(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).unwrap_or_default();
        Sha256::digest(&json).to_vec()
    }
}

fn text(errors: &mut Vec<FieldError>, field: &str, value: &str, max: usize) -> String {
    let v = value.trim();
    if v.is_empty() {
        errors.push(FieldError::new(field, "is required"));
    } else if v.chars().count() > max {
        errors.push(FieldError::new(field, format!("at most {max} characters")));
    } else if v.chars().any(char::is_control) {
        errors.push(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    v.to_owned()
}

/// Merge lines of one SKU and check the limits: 1–50 lines, 1–99 units a line (after merging).
pub fn merge_lines(items: &[LineRequest], field: &str) -> Result<Vec<(Uuid, i64)>, FieldError> {
    if items.is_empty() || items.len() > MAX_LINES {
        return Err(FieldError::new(
            field,
            format!("an order has 1 to {MAX_LINES} lines"),
        ));
    }
    let mut merged: BTreeMap<Uuid, i64> = BTreeMap::new();
    for (i, line) in items.iter().enumerate() {
        if !(1..=MAX_QUANTITY).contains(&line.quantity) {
            return Err(FieldError::new(
                format!("{field}[{i}].quantity"),
                format!("must be between 1 and {MAX_QUANTITY}"),
            ));
        }
        *merged.entry(line.sku_id).or_default() += line.quantity;
    }
    if let Some((sku, q)) = merged.iter().find(|(_, q)| **q > MAX_QUANTITY) {
        return Err(FieldError::new(
            field,
            format!("{q} units of {sku} in all; a line holds at most {MAX_QUANTITY}"),
        ));
    }
    Ok(merged.into_iter().collect())
}

pub fn validate(req: &PlaceOrder) -> Result<Placement> {
    let mut errors = Vec::new();
    let lines = match (&req.items, req.from_cart) {
        (Some(_), true) => {
            errors.push(FieldError::new(
                "items",
                "give either `items` or `from_cart: true`, not both",
            ));
            Vec::new()
        }
        (None, false) => {
            errors.push(FieldError::new(
                "items",
                "is required (or `from_cart: true` to order the cart)",
            ));
            Vec::new()
        }
        (None, true) => Vec::new(),
        (Some(items), false) => merge_lines(items, "items").unwrap_or_else(|e| {
            errors.push(e);
            Vec::new()
        }),
    };
    let a = &req.shipping_address;
    let address = ShippingAddress {
        name: text(&mut errors, "shipping_address.name", &a.name, MAX_TEXT),
        line1: text(&mut errors, "shipping_address.line1", &a.line1, MAX_TEXT),
        line2: a
            .line2
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| text(&mut errors, "shipping_address.line2", s, MAX_TEXT)),
        city: text(&mut errors, "shipping_address.city", &a.city, 100),
        postal_code: text(
            &mut errors,
            "shipping_address.postal_code",
            &a.postal_code,
            20,
        ),
        country: a.country.trim().to_ascii_uppercase(),
    };
    let country_ok = address.country.len() == 2
        && address.country.bytes().all(|b| b.is_ascii_uppercase())
        && address.country.parse::<iso_currency::Country>().is_ok();
    if !country_ok {
        errors.push(FieldError::new(
            "shipping_address.country",
            "must be an ISO 3166-1 alpha-2 country code such as US or KR",
        ));
    }
    let pm = req.payment_method.trim();
    let pm_ok = pm.len() > 4
        && pm.len() <= 64
        && pm.starts_with("tok_")
        && pm.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !pm_ok {
        errors.push(FieldError::new(
            "payment_method",
            "must be a payment token `tok_...` (letters, digits and `_`, at most 64)",
        ));
    }
    if !errors.is_empty() {
        return Err(OrderError::Validation(errors));
    }
    Ok(Placement {
        from_cart: req.from_cart,
        lines,
        shipping_address: address,
        payment_method: pm.to_owned(),
    })
}

/// Place an order, or answer with the order an earlier request with the same key placed.
pub async fn place(
    state: &AppState,
    caller: &AuthUser,
    bearer: &str,
    key: &str,
    placement: Placement,
) -> Result<Order> {
    caller.require(&[Role::Buyer])?;
    let digest = placement.digest();
    // A retry: answer with the order as it is now, without asking anyone for prices again.
    if let Some(id) = replayed(state, caller.id, key, &digest).await? {
        return full_order(state, id).await;
    }
    state
        .admission
        .check(&state.db)
        .await?
        .map_err(OrderError::Busy)?;
    let wanted = if placement.from_cart {
        let cart = state.cart.lines(bearer).await?;
        if cart.is_empty() {
            return Err(OrderError::CartEmpty);
        }
        let as_requests: Vec<LineRequest> = cart
            .iter()
            .map(|(sku_id, quantity)| LineRequest {
                sku_id: *sku_id,
                quantity: *quantity,
            })
            .collect();
        merge_lines(&as_requests, "cart").map_err(|e| OrderError::Validation(vec![e]))?
    } else {
        placement.lines.clone()
    };
    let ids: Vec<Uuid> = wanted.iter().map(|(id, _)| *id).collect();
    let skus = state.catalog.lookup(&ids).await?;
    let by_id: BTreeMap<Uuid, _> = skus.into_iter().map(|s| (s.id, s)).collect();

    let mut unavailable = Vec::new();
    let mut currencies = BTreeSet::new();
    let mut lines = Vec::new();
    for (sku_id, quantity) in &wanted {
        let requested = *quantity as u32;
        let Some(s) = by_id.get(sku_id) else {
            unavailable.push(UnavailableLine {
                sku_id: *sku_id,
                reason: "unknown",
                requested,
                available: 0,
            });
            continue;
        };
        if s.status != "active" {
            unavailable.push(UnavailableLine {
                sku_id: *sku_id,
                reason: "inactive",
                requested,
                available: s.available.max(0),
            });
            continue;
        }
        if s.available < *quantity {
            unavailable.push(UnavailableLine {
                sku_id: *sku_id,
                reason: "insufficient_stock",
                requested,
                available: s.available.max(0),
            });
            continue;
        }
        currencies.insert(s.currency);
        lines.push(NewLine {
            sku_id: *sku_id,
            product_id: s.product_id,
            product_name: s.product_name.clone(),
            seller_id: s.seller_id,
            quantity: *quantity as i32,
            unit_price: s.price,
        });
    }
    if !unavailable.is_empty() {
        return Err(OrderError::LinesUnavailable(unavailable));
    }
    if currencies.len() > 1 {
        return Err(OrderError::MixedCurrencies(
            currencies.iter().map(|c| c.as_str().to_owned()).collect(),
        ));
    }
    let Some(currency) = currencies.into_iter().next() else {
        return Err(OrderError::CartEmpty);
    };
    let total: Decimal = lines
        .iter()
        .map(|l| l.unit_price * Decimal::from(l.quantity))
        .sum();

    let id = shared::id::new_id();
    let mut tx = state.db.begin().await?;
    let inserted = repo::insert_order(
        &mut tx,
        &NewOrder {
            id,
            buyer_id: caller.id,
            currency: currency.as_str(),
            total_amount: total,
            shipping_address: &placement.shipping_address,
            payment_method: &placement.payment_method,
            idempotency_key: key,
            request_digest: &digest,
            payment_timeout_secs: state.config.payment_timeout_secs as i64,
        },
    )
    .await?;
    if !inserted {
        // A concurrent request with the same key committed first: answer as a retry would.
        tx.rollback().await?;
        return match replayed(state, caller.id, key, &digest).await? {
            Some(id) => full_order(state, id).await,
            None => Err(OrderError::Unexpected(anyhow::anyhow!(
                "idempotency key conflict without a stored order"
            ))),
        };
    }
    repo::insert_lines(&mut tx, id, &lines).await?;
    repo::record(
        &mut tx,
        id,
        Status::Pending,
        PaymentStatus::None,
        "placed",
        None,
        true,
        None,
    )
    .await?;
    let created = OrderCreated {
        order_id: id,
        buyer_id: caller.id,
        items: lines
            .iter()
            .map(|l| OrderLine {
                sku_id: l.sku_id,
                product_id: l.product_id,
                seller_id: l.seller_id,
                product_name: l.product_name.clone(),
                quantity: l.quantity as u32,
                unit_price: l.unit_price,
                currency,
            })
            .collect(),
        total: shared::money::rounded(total, currency),
        currency,
        created_at: chrono::Utc::now(),
    };
    shared::outbox::enqueue(&mut tx, SOURCE, &created, &EventMeta::from_request()).await?;
    tx.commit().await?;
    metrics::counter!("orders_placed_total").increment(1);
    tracing::info!(order_id = %id, buyer_id = %caller.id, lines = lines.len(), "order placed");
    full_order(state, id).await
}

/// The order an earlier request with `key` placed, when its body was the same; `422` when not.
async fn replayed(state: &AppState, buyer: Uuid, key: &str, digest: &[u8]) -> Result<Option<Uuid>> {
    match repo::find_by_key(&state.db, buyer, key).await? {
        None => Ok(None),
        Some((id, stored)) if stored == digest => {
            metrics::counter!("order_idempotent_replays_total").increment(1);
            Ok(Some(id))
        }
        Some((order_id, _)) => Err(OrderError::IdempotencyKeyReused { order_id }),
    }
}

fn currency_of(row: &OrderRow) -> Option<Currency> {
    row.currency.parse().ok()
}

fn money(amount: Decimal, currency: Option<Currency>) -> String {
    match currency {
        Some(c) => shared::money::rounded(amount, c).to_string(),
        None => amount.normalize().to_string(),
    }
}

fn item_view(i: &ItemRow, currency: Option<Currency>) -> OrderItem {
    OrderItem {
        sku_id: i.sku_id,
        product_id: i.product_id,
        product_name: i.product_name.clone(),
        seller_id: i.seller_id,
        quantity: i.quantity.max(0) as u32,
        unit_price: money(i.unit_price, currency),
        line_total: money(i.line_total, currency),
        shipped_at: i.shipped_at,
        tracking_number: i.tracking_number.clone(),
    }
}

/// A read-only transaction with one snapshot for all its statements, so an order, its lines and
/// its history are read as of one moment (a transition committing in between would otherwise show
/// a history entry the order row does not reflect yet).
async fn snapshot(state: &AppState) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = state.db.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

pub async fn full_order(state: &AppState, id: Uuid) -> Result<Order> {
    let mut tx = snapshot(state).await?;
    let row = repo::get(&mut *tx, id).await?.ok_or(OrderError::NotFound)?;
    let items = repo::items(&mut *tx, id).await?;
    let history = repo::history(&mut *tx, id).await?;
    tx.commit().await?;
    Ok(order_view(row, &items, &history))
}

fn order_view(row: OrderRow, items: &[ItemRow], history: &[repo::HistoryRow]) -> Order {
    let currency = currency_of(&row);
    Order {
        id: row.id,
        buyer_id: row.buyer_id,
        status: row.status,
        payment_status: row.payment_status,
        total_amount: money(row.total_amount, currency),
        currency: row.currency.clone(),
        items: items.iter().map(|i| item_view(i, currency)).collect(),
        shipping_address: row.shipping_address.0,
        payment_method: row.payment_method,
        cancel_reason: row.cancel_reason,
        cancel_note: row.cancel_note,
        payment_deadline: row.deadline_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
        status_history: history
            .iter()
            .map(|h| HistoryEntry {
                status: h.status,
                payment_status: h.payment_status,
                at: h.at,
                trigger: h.trigger.clone(),
                reason: h.reason.clone(),
                ignored: !h.applied,
            })
            .collect(),
    }
}

fn seller_view(row: OrderRow, items: &[ItemRow]) -> SellerOrder {
    let currency = currency_of(&row);
    let subtotal: Decimal = items.iter().map(|i| i.line_total).sum();
    SellerOrder {
        id: row.id,
        status: row.status,
        payment_status: row.payment_status,
        currency: row.currency.clone(),
        items: items.iter().map(|i| item_view(i, currency)).collect(),
        subtotal: money(subtotal, currency),
        shipping_address: row.shipping_address.0,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// One order as `caller` may see it: whole for its buyer and admins, only their lines for a
/// seller with a line in it, and `404` for everyone else (whether the order exists is not told).
pub async fn get(state: &AppState, caller: &AuthUser, id: Uuid) -> Result<OrderView> {
    let mut tx = snapshot(state).await?;
    let row = repo::get(&mut *tx, id).await?.ok_or(OrderError::NotFound)?;
    if row.buyer_id == caller.id || caller.is_admin() {
        let items = repo::items(&mut *tx, id).await?;
        let history = repo::history(&mut *tx, id).await?;
        return Ok(OrderView::Full(Box::new(order_view(row, &items, &history))));
    }
    if caller.role == Role::Seller {
        let items = repo::seller_items(&mut *tx, caller.id, &[id]).await?;
        if !items.is_empty() {
            return Ok(OrderView::Seller(Box::new(seller_view(row, &items))));
        }
    }
    Err(OrderError::NotFound)
}

fn status_filter(q: &ListQuery) -> Result<Option<Status>> {
    match q.status.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => Status::parse(s).map(Some).ok_or_else(|| {
            OrderError::field(
                "status",
                "must be one of pending, awaiting_payment, confirmed, shipped, delivered, cancelled",
            )
        }),
    }
}

fn page_params(q: &ListQuery) -> shared::pagination::PageParams {
    shared::pagination::PageParams {
        limit: q.limit,
        cursor: q.cursor.clone(),
    }
}

/// The caller's own orders, newest first.
pub async fn list_mine(state: &AppState, caller: &AuthUser, q: &ListQuery) -> Result<OrderPage> {
    let status = status_filter(q)?;
    let params = page_params(q);
    let limit = params.limit()?;
    let before: Option<Uuid> = params.cursor()?;
    let rows =
        repo::list_for_buyer(&state.db, caller.id, status, before, i64::from(limit) + 1).await?;
    let summaries: Vec<OrderSummary> = rows
        .into_iter()
        .map(|(row, count)| {
            let currency = currency_of(&row);
            OrderSummary {
                id: row.id,
                status: row.status,
                payment_status: row.payment_status,
                total_amount: money(row.total_amount, currency),
                currency: row.currency,
                item_count: count.max(0) as u32,
                created_at: row.created_at,
                updated_at: row.updated_at,
            }
        })
        .collect();
    let page = Page::from_rows(summaries, limit, |o| o.id);
    Ok(OrderPage {
        items: page.items,
        next_cursor: page.next_cursor,
    })
}

/// A seller's orders (only their lines), newest first.
pub async fn list_seller(
    state: &AppState,
    caller: &AuthUser,
    q: &ListQuery,
) -> Result<SellerOrderPage> {
    caller.require(&[Role::Seller])?;
    let status = status_filter(q)?;
    let params = page_params(q);
    let limit = params.limit()?;
    let before: Option<Uuid> = params.cursor()?;
    let rows =
        repo::list_for_seller(&state.db, caller.id, status, before, i64::from(limit) + 1).await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let items = repo::seller_items(&state.db, caller.id, &ids).await?;
    let mut by_order: BTreeMap<Uuid, Vec<ItemRow>> = BTreeMap::new();
    for i in items {
        by_order.entry(i.order_id).or_default().push(i);
    }
    let views: Vec<SellerOrder> = rows
        .into_iter()
        .map(|row| {
            let items = by_order.remove(&row.id).unwrap_or_default();
            seller_view(row, &items)
        })
        .collect();
    let page = Page::from_rows(views, limit, |o| o.id);
    Ok(SellerOrderPage {
        items: page.items,
        next_cursor: page.next_cursor,
    })
}

fn sku_quantities(items: &[ItemRow]) -> Vec<SkuQuantity> {
    items
        .iter()
        .map(|i| SkuQuantity {
            sku_id: i.sku_id,
            quantity: i.quantity.max(0) as u32,
        })
        .collect()
}

/// A cancellation: the states it may leave, what caused it, and what it records.
pub struct Cancel<'a> {
    pub from: &'a [Status],
    /// `cancel`, `deadline`, or the type of the event that caused it.
    pub trigger: &'a str,
    pub reason: CancelReason,
    pub payment_status: Option<PaymentStatus>,
    pub note: Option<&'a str>,
    pub details: Option<serde_json::Value>,
}

/// Cancel an order and announce it, in `conn`'s transaction. `Refused` when the order is in a state
/// that cannot be cancelled (the caller decides whether that is a `409` or an ignored event).
pub async fn cancel_in(
    conn: &mut sqlx::PgConnection,
    id: Uuid,
    c: Cancel<'_>,
    meta: &EventMeta,
) -> Result<Applied, sqlx::Error> {
    let reason = c.reason;
    // Lock the order first, then look at its lines with a fresh snapshot: a seller who shipped a
    // line committed before this lock was granted is seen, and a partly shipped order is not
    // cancelled (its shipped units must not be restocked nor its payment given back).
    let Some(locked) = repo::lock(&mut *conn, id).await? else {
        return Ok(Applied::Missing);
    };
    if repo::any_line_shipped(&mut *conn, id).await? {
        return Ok(Applied::Refused(locked));
    }
    let applied = repo::transition(
        &mut *conn,
        id,
        &Transition {
            trigger: c.trigger,
            from: c.from,
            to: Status::Cancelled,
            payment_status: c.payment_status,
            cancel_reason: Some(reason),
            note: c.note,
            details: c.details,
        },
    )
    .await?;
    if let Applied::Done { previous, order } = &applied {
        let items = repo::items(&mut *conn, id).await?;
        let event = OrderCancelled {
            order_id: id,
            buyer_id: order.buyer_id,
            reason,
            previous_status: previous.as_str().to_owned(),
            items: sku_quantities(&items),
        };
        shared::outbox::enqueue(conn, SOURCE, &event, meta).await?;
        metrics::counter!("orders_cancelled_total", "reason" => super::domain::cancel_reason_str(reason))
            .increment(1);
    }
    Ok(applied)
}

/// The buyer (or an admin) cancels an order that has not shipped.
pub async fn cancel(
    state: &AppState,
    caller: &AuthUser,
    id: Uuid,
    req: CancelRequest,
) -> Result<Order> {
    let note = req
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if note.is_some_and(|n| n.chars().count() > 500) {
        return Err(OrderError::field("reason", "at most 500 characters"));
    }
    if note.is_some_and(|n| n.chars().any(|c| c.is_control() && c != '\n' && c != '\t')) {
        return Err(OrderError::field(
            "reason",
            "must not contain control characters",
        ));
    }
    let row = repo::get(&state.db, id)
        .await?
        .ok_or(OrderError::NotFound)?;
    let reason = if row.buyer_id == caller.id {
        CancelReason::BuyerRequested
    } else if caller.is_admin() {
        CancelReason::AdminCancelled
    } else {
        return Err(OrderError::NotFound);
    };
    let mut tx = state.db.begin().await?;
    let applied = cancel_in(
        &mut tx,
        id,
        Cancel {
            from: &Status::CANCELLABLE,
            trigger: "cancel",
            reason,
            payment_status: None,
            note,
            details: None,
        },
        &EventMeta::from_request(),
    )
    .await?;
    match applied {
        Applied::Done { .. } => {
            tx.commit().await?;
            tracing::info!(order_id = %id, reason = ?reason, "order cancelled");
            full_order(state, id).await
        }
        Applied::Refused(order) => Err(OrderError::NotCancellable(order.status)),
        Applied::Missing => Err(OrderError::NotFound),
    }
}

/// A seller marks their lines of a confirmed order shipped; the order is `shipped` once every line is.
pub async fn ship(
    state: &AppState,
    caller: &AuthUser,
    id: Uuid,
    req: ShipRequest,
) -> Result<SellerOrder> {
    caller.require(&[Role::Seller])?;
    let tracking = req
        .tracking_number
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if let Some(t) = tracking {
        if t.chars().count() > 100 || t.chars().any(char::is_control) {
            return Err(OrderError::field(
                "tracking_number",
                "at most 100 printable characters",
            ));
        }
    }
    let mut tx = state.db.begin().await?;
    // Lock the order first: shipping the last lines and a cancel, or two sellers shipping the
    // last lines together, are serialised here.
    let order = repo::lock(&mut tx, id).await?.ok_or(OrderError::NotFound)?;
    if !repo::seller_has_lines(&mut *tx, id, caller.id).await? {
        return Err(OrderError::NotFound);
    }
    if order.status != Status::Confirmed {
        return Err(OrderError::NotShippable(order.status));
    }
    // Goods leave only for money that is taken: a capture still being retried may yet fail and
    // cancel the order.
    if order.payment_status != PaymentStatus::Captured {
        return Err(OrderError::PaymentNotCaptured(order.payment_status));
    }
    let unshipped = repo::ship_lines(&mut tx, id, caller.id, tracking).await?;
    if unshipped == 0 {
        let applied = repo::transition(
            &mut tx,
            id,
            &Transition {
                trigger: "ship",
                from: &[Status::Confirmed],
                to: Status::Shipped,
                payment_status: None,
                cancel_reason: None,
                note: None,
                details: None,
            },
        )
        .await?;
        if let Applied::Refused(o) = applied {
            return Err(OrderError::NotShippable(o.status));
        }
    }
    tx.commit().await?;
    let row = repo::get(&state.db, id)
        .await?
        .ok_or(OrderError::NotFound)?;
    let items = repo::seller_items(&state.db, caller.id, &[id]).await?;
    Ok(seller_view(row, &items))
}

/// The buyer (or an admin) confirms a shipped order arrived.
pub async fn deliver(state: &AppState, caller: &AuthUser, id: Uuid) -> Result<Order> {
    let row = repo::get(&state.db, id)
        .await?
        .ok_or(OrderError::NotFound)?;
    if row.buyer_id != caller.id && !caller.is_admin() {
        return Err(OrderError::NotFound);
    }
    let mut tx = state.db.begin().await?;
    let applied = repo::transition(
        &mut tx,
        id,
        &Transition {
            trigger: "deliver",
            from: &[Status::Shipped],
            to: Status::Delivered,
            payment_status: None,
            cancel_reason: None,
            note: None,
            details: None,
        },
    )
    .await?;
    match applied {
        Applied::Done { .. } => {
            tx.commit().await?;
            full_order(state, id).await
        }
        Applied::Refused(o) => Err(OrderError::NotDeliverable(o.status)),
        Applied::Missing => Err(OrderError::NotFound),
    }
}
