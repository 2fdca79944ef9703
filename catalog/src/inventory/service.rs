//! The three inventory steps of the saga. Each takes the consumer's transaction, the event and
//! its envelope (for causation), and returns what it did; the outcome event goes to the outbox in
//! the same transaction. Database errors (a deadlock, a serialization failure, a lost connection)
//! propagate as errors, which the consumer retries: they are never turned into "insufficient
//! stock".
//!
//! Every step is a function of the order's record in `inventory_orders` (read locked, under the
//! order's advisory lock) and writes the record it leads to:
//!
//! | record      | OrderCreated                 | OrderConfirmed     | OrderCancelled            |
//! |-------------|------------------------------|--------------------|---------------------------|
//! | none        | reserve → reserved / failed  | nothing            | nothing held → released   |
//! | reserved    | nothing                      | commit → committed | release → released        |
//! | committed   | nothing                      | nothing            | restock → released        |
//! | failed      | nothing                      | nothing            | nothing                   |
//! | released    | nothing                      | nothing            | nothing                   |
//!
//! So a late, repeated or re-driven event of a finished order (failed, cancelled) does nothing:
//! in particular an `OrderCreated` re-driven from the DLQ after its order was cancelled holds no
//! stock for a dead order.

use std::collections::BTreeMap;

use shared::events::{
    Envelope, EventMeta, FailedLine, InventoryCommitted, InventoryReleased,
    InventoryReservationFailed, InventoryReserved, OrderCancelled, OrderConfirmed, OrderCreated,
    ReservationFailure, SkuQuantity,
};
use sqlx::PgConnection;
use uuid::Uuid;

use super::repository::{self as repo, OrderState};

const SOURCE: &str = "catalog";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Reserved(Vec<SkuQuantity>),
    Failed(ReservationFailure, Vec<FailedLine>),
    Committed(Vec<SkuQuantity>),
    Released {
        lines: Vec<SkuQuantity>,
        restocked: bool,
    },
    /// Nothing to do (already done, or nothing was held for this order).
    Nothing(&'static str),
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Reserved(_) => "reserved",
            Outcome::Failed(..) => "failed",
            Outcome::Committed(_) => "committed",
            Outcome::Released { .. } => "released",
            Outcome::Nothing(_) => "nothing",
        }
    }
}

struct Wanted {
    quantity: u64,
    lines: Vec<(rust_decimal::Decimal, String)>,
}

/// Reserve every line of the order, or none.
pub async fn reserve(
    conn: &mut PgConnection,
    event: &OrderCreated,
    cause: &Envelope,
) -> Result<Outcome, sqlx::Error> {
    repo::lock_order(&mut *conn, event.order_id).await?;
    match repo::lock_order_state(&mut *conn, event.order_id).await? {
        None => {}
        Some(OrderState::Reserved | OrderState::Committed) => {
            return Ok(Outcome::Nothing("already reserved"))
        }
        Some(OrderState::Failed) => return Ok(Outcome::Nothing("the reservation failed before")),
        Some(OrderState::Released) => return Ok(Outcome::Nothing("the order was cancelled")),
    }
    // One entry per SKU, in id order (the lock order); a SKU on two lines is reserved once for
    // the sum, and each line's price is checked.
    let mut wanted: BTreeMap<Uuid, Wanted> = BTreeMap::new();
    for line in &event.items {
        let w = wanted.entry(line.sku_id).or_insert(Wanted {
            quantity: 0,
            lines: Vec::new(),
        });
        w.quantity += u64::from(line.quantity);
        w.lines
            .push((line.unit_price, line.currency.as_str().to_owned()));
    }
    let ids: Vec<Uuid> = wanted.keys().copied().collect();
    repo::share_lock_products_of(&mut *conn, &ids).await?;
    let locked = repo::lock_skus_for_reservation(&mut *conn, &ids).await?;
    let by_id: BTreeMap<Uuid, &repo::LockedSku> = locked.iter().map(|s| (s.id, s)).collect();

    let mut failures = Vec::new();
    let mut holds: Vec<(Uuid, i32)> = Vec::new();
    for (sku_id, w) in &wanted {
        let requested = u32::try_from(w.quantity).unwrap_or(u32::MAX);
        let fail = |reason, available: i32| FailedLine {
            sku_id: *sku_id,
            reason,
            requested,
            available: u32::try_from(available.max(0)).unwrap_or(0),
        };
        let Some(s) = by_id.get(sku_id) else {
            failures.push(fail(ReservationFailure::UnknownSku, 0));
            continue;
        };
        let available = s.stock_quantity - s.reserved_quantity;
        if s.deleted || s.status != "active" {
            failures.push(fail(ReservationFailure::SkuInactive, available));
        } else if s.product_deleted || s.product_status != "active" {
            failures.push(fail(ReservationFailure::ProductInactive, available));
        } else if w
            .lines
            .iter()
            .any(|(price, currency)| *price != s.price || *currency != s.currency)
        {
            failures.push(fail(ReservationFailure::PriceChanged, available));
        } else {
            match i32::try_from(w.quantity) {
                Ok(q) if q > 0 && q <= available => holds.push((*sku_id, q)),
                _ => failures.push(fail(ReservationFailure::InsufficientStock, available)),
            }
        }
    }
    if event.items.is_empty() {
        // An order with nothing in it cannot be fulfilled; say so rather than hold nothing.
        failures.push(FailedLine {
            sku_id: Uuid::nil(),
            reason: ReservationFailure::UnknownSku,
            requested: 0,
            available: 0,
        });
    }
    let meta = EventMeta::caused_by(cause);
    if let Some(first) = failures.first() {
        let reason = first.reason;
        let failed = InventoryReservationFailed {
            order_id: event.order_id,
            reason,
            lines: failures.clone(),
        };
        repo::set_order_state(&mut *conn, event.order_id, OrderState::Failed).await?;
        shared::outbox::enqueue(conn, SOURCE, &failed, &meta).await?;
        return Ok(Outcome::Failed(reason, failures));
    }
    let (skus, quantities): (Vec<Uuid>, Vec<i32>) = holds.iter().copied().unzip();
    repo::hold(&mut *conn, event.order_id, &skus, &quantities).await?;
    repo::set_order_state(&mut *conn, event.order_id, OrderState::Reserved).await?;
    let lines = to_lines(&skus, &quantities);
    let reserved = InventoryReserved {
        order_id: event.order_id,
        lines: lines.clone(),
    };
    shared::outbox::enqueue(conn, SOURCE, &reserved, &meta).await?;
    Ok(Outcome::Reserved(lines))
}

fn to_lines(skus: &[Uuid], quantities: &[i32]) -> Vec<SkuQuantity> {
    skus.iter()
        .zip(quantities)
        .map(|(s, q)| SkuQuantity {
            sku_id: *s,
            quantity: u32::try_from(*q).unwrap_or(0),
        })
        .collect()
}

fn split(rows: &[&repo::Reservation]) -> (Vec<Uuid>, Vec<i32>) {
    rows.iter().map(|r| (r.sku_id, r.quantity)).unzip()
}

/// The order is paid: its held units are sold.
pub async fn commit(
    conn: &mut PgConnection,
    event: &OrderConfirmed,
    cause: &Envelope,
) -> Result<Outcome, sqlx::Error> {
    repo::lock_order(&mut *conn, event.order_id).await?;
    match repo::lock_order_state(&mut *conn, event.order_id).await? {
        Some(OrderState::Reserved) => {}
        None | Some(OrderState::Failed) => {
            return Ok(Outcome::Nothing("no reservation for this order"))
        }
        Some(OrderState::Committed | OrderState::Released) => {
            return Ok(Outcome::Nothing("nothing held"))
        }
    }
    let rows = repo::lock_reservations(&mut *conn, event.order_id).await?;
    let held: Vec<&repo::Reservation> = rows.iter().filter(|r| r.status == "held").collect();
    let (skus, quantities) = split(&held);
    repo::lock_skus(&mut *conn, &skus).await?;
    repo::commit_held(&mut *conn, event.order_id, &skus, &quantities).await?;
    repo::set_order_state(&mut *conn, event.order_id, OrderState::Committed).await?;
    let lines = to_lines(&skus, &quantities);
    let committed = InventoryCommitted {
        order_id: event.order_id,
        lines: lines.clone(),
    };
    shared::outbox::enqueue(conn, SOURCE, &committed, &EventMeta::caused_by(cause)).await?;
    Ok(Outcome::Committed(lines))
}

/// The order is cancelled: held units are released; sold ones go back on the shelf.
pub async fn release(
    conn: &mut PgConnection,
    event: &OrderCancelled,
    cause: &Envelope,
) -> Result<Outcome, sqlx::Error> {
    repo::lock_order(&mut *conn, event.order_id).await?;
    let state = repo::lock_order_state(&mut *conn, event.order_id).await?;
    let restock = match state {
        Some(OrderState::Reserved) => false,
        Some(OrderState::Committed) => true,
        None => {
            // Cancelled before inventory saw it (or its OrderCreated is in the DLQ): record it,
            // so that OrderCreated, should it come later, reserves nothing.
            repo::set_order_state(&mut *conn, event.order_id, OrderState::Released).await?;
            return Ok(Outcome::Nothing("no reservation for this order"));
        }
        Some(OrderState::Failed) => return Ok(Outcome::Nothing("no reservation for this order")),
        Some(OrderState::Released) => return Ok(Outcome::Nothing("already released")),
    };
    let rows = repo::lock_reservations(&mut *conn, event.order_id).await?;
    let wanted = if restock { "committed" } else { "held" };
    let rows: Vec<&repo::Reservation> = rows.iter().filter(|r| r.status == wanted).collect();
    let (skus, quantities) = split(&rows);
    repo::lock_skus(&mut *conn, &skus).await?;
    if restock {
        repo::restock_committed(&mut *conn, event.order_id, &skus, &quantities).await?;
    } else {
        repo::release_held(&mut *conn, event.order_id, &skus, &quantities).await?;
    }
    repo::set_order_state(&mut *conn, event.order_id, OrderState::Released).await?;
    let (lines, restocked) = (to_lines(&skus, &quantities), restock);
    let released = InventoryReleased {
        order_id: event.order_id,
        lines: lines.clone(),
        restocked,
    };
    shared::outbox::enqueue(conn, SOURCE, &released, &EventMeta::caused_by(cause)).await?;
    Ok(Outcome::Released { lines, restocked })
}
