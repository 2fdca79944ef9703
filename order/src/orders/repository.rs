//! SQL of the order service. Every status change goes through [`transition`]: one conditional
//! `UPDATE` whose `WHERE` names the states the change may leave, plus its history row.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::domain::{cancel_reason_str, PaymentStatus, Status};
use super::dto::ShippingAddress;
use shared::events::CancelReason;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderRow {
    pub id: Uuid,
    pub buyer_id: Uuid,
    #[sqlx(try_from = "String")]
    pub status: Status,
    #[sqlx(try_from = "String")]
    pub payment_status: PaymentStatus,
    pub currency: String,
    pub total_amount: Decimal,
    pub shipping_address: Json<ShippingAddress>,
    pub payment_method: String,
    pub cancel_reason: Option<String>,
    pub cancel_note: Option<String>,
    pub deadline_at: Option<DateTime<Utc>>,
    pub request_digest: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ItemRow {
    pub order_id: Uuid,
    pub line_no: i32,
    pub sku_id: Uuid,
    pub product_id: Uuid,
    pub product_name: String,
    pub seller_id: Uuid,
    pub quantity: i32,
    pub unit_price: Decimal,
    pub line_total: Decimal,
    pub shipped_at: Option<DateTime<Utc>>,
    pub tracking_number: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HistoryRow {
    #[sqlx(try_from = "String")]
    pub status: Status,
    #[sqlx(try_from = "String")]
    pub payment_status: PaymentStatus,
    pub trigger: String,
    pub reason: Option<String>,
    pub applied: bool,
    pub at: DateTime<Utc>,
}

const ORDER_COLUMNS: &str = "id, buyer_id, status, payment_status, currency, total_amount, \
     shipping_address, payment_method, cancel_reason, cancel_note, deadline_at, request_digest, \
     created_at, updated_at";

const ITEM_COLUMNS: &str = "order_id, line_no, sku_id, product_id, product_name, seller_id, \
     quantity, unit_price, line_total, shipped_at, tracking_number";

/// An order about to be placed.
pub struct NewOrder<'a> {
    pub id: Uuid,
    pub buyer_id: Uuid,
    pub currency: &'a str,
    pub total_amount: Decimal,
    pub shipping_address: &'a ShippingAddress,
    pub payment_method: &'a str,
    pub idempotency_key: &'a str,
    pub request_digest: &'a [u8],
    pub payment_timeout_secs: i64,
}

pub struct NewLine {
    pub sku_id: Uuid,
    pub product_id: Uuid,
    pub product_name: String,
    pub seller_id: Uuid,
    pub quantity: i32,
    pub unit_price: Decimal,
}

/// The order a buyer placed with `key`, if any: its id and request digest.
pub async fn find_by_key(
    db: impl PgExecutor<'_>,
    buyer: Uuid,
    key: &str,
) -> Result<Option<(Uuid, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, request_digest FROM orders WHERE buyer_id = $1 AND idempotency_key = $2",
    )
    .bind(buyer)
    .bind(key)
    .fetch_optional(db)
    .await
}

/// Insert the order unless the buyer already used its key: `false` when another request with the
/// same key got there first (the unique constraint decides, never a check-then-insert).
pub async fn insert_order(conn: &mut PgConnection, o: &NewOrder<'_>) -> Result<bool, sqlx::Error> {
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO orders (id, buyer_id, currency, total_amount, shipping_address, payment_method,
                             idempotency_key, request_digest, deadline_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9))
         ON CONFLICT ON CONSTRAINT orders_buyer_idempotency_key DO NOTHING
         RETURNING id",
    )
    .bind(o.id)
    .bind(o.buyer_id)
    .bind(o.currency)
    .bind(o.total_amount)
    .bind(Json(o.shipping_address))
    .bind(o.payment_method)
    .bind(o.idempotency_key)
    .bind(o.request_digest)
    .bind(o.payment_timeout_secs as f64)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(inserted.is_some())
}

pub async fn insert_lines(
    conn: &mut PgConnection,
    order_id: Uuid,
    lines: &[NewLine],
) -> Result<(), sqlx::Error> {
    let line_nos: Vec<i32> = (1..=lines.len() as i32).collect();
    let skus: Vec<Uuid> = lines.iter().map(|l| l.sku_id).collect();
    let products: Vec<Uuid> = lines.iter().map(|l| l.product_id).collect();
    let names: Vec<&str> = lines.iter().map(|l| l.product_name.as_str()).collect();
    let sellers: Vec<Uuid> = lines.iter().map(|l| l.seller_id).collect();
    let quantities: Vec<i32> = lines.iter().map(|l| l.quantity).collect();
    let prices: Vec<Decimal> = lines.iter().map(|l| l.unit_price).collect();
    sqlx::query(
        "INSERT INTO order_items (order_id, line_no, sku_id, product_id, product_name, seller_id,
                                  quantity, unit_price, line_total)
         SELECT $1, n, s, p, name, seller, q, price, price * q
         FROM UNNEST($2::int[], $3::uuid[], $4::uuid[], $5::text[], $6::uuid[], $7::int[],
                     $8::numeric[]) AS t(n, s, p, name, seller, q, price)",
    )
    .bind(order_id)
    .bind(&line_nos)
    .bind(&skus)
    .bind(&products)
    .bind(&names)
    .bind(&sellers)
    .bind(&quantities)
    .bind(&prices)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub async fn record(
    conn: &mut PgConnection,
    order_id: Uuid,
    status: Status,
    payment_status: PaymentStatus,
    trigger: &str,
    reason: Option<&str>,
    applied: bool,
    details: Option<&Value>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO order_status_history
             (order_id, status, payment_status, trigger, reason, applied, details)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(order_id)
    .bind(status.as_str())
    .bind(payment_status.as_str())
    .bind(trigger)
    .bind(reason)
    .bind(applied)
    .bind(details)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The order's current status, its row locked until the transaction ends.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
}

pub async fn items(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<ItemRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ITEM_COLUMNS} FROM order_items WHERE order_id = $1 ORDER BY line_no"
    ))
    .bind(id)
    .fetch_all(db)
    .await
}

pub async fn history(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<HistoryRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT status, payment_status, trigger, reason, applied, at
         FROM order_status_history WHERE order_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(db)
    .await
}

/// A page of a buyer's orders, newest first, with each order's item count.
pub async fn list_for_buyer(
    db: impl PgExecutor<'_>,
    buyer: Uuid,
    status: Option<Status>,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<(OrderRow, i64)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        order: OrderRow,
        item_count: i64,
    }
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS},
                (SELECT count(*) FROM order_items i WHERE i.order_id = o.id) AS item_count
         FROM orders o
         WHERE buyer_id = $1 AND ($2::text IS NULL OR status = $2)
           AND ($3::uuid IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $4"
    ))
    .bind(buyer)
    .bind(status.map(Status::as_str))
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.order, r.item_count)).collect())
}

/// A page of the orders that hold lines of `seller`, newest first.
pub async fn list_for_seller(
    db: impl PgExecutor<'_>,
    seller: Uuid,
    status: Option<Status>,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<OrderRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders o
         WHERE o.id IN (SELECT DISTINCT order_id FROM order_items
                        WHERE seller_id = $1 AND ($3::uuid IS NULL OR order_id < $3))
           AND ($2::text IS NULL OR status = $2)
         ORDER BY id DESC LIMIT $4"
    ))
    .bind(seller)
    .bind(status.map(Status::as_str))
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The lines of `seller` in `orders`.
pub async fn seller_items(
    db: impl PgExecutor<'_>,
    seller: Uuid,
    orders: &[Uuid],
) -> Result<Vec<ItemRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ITEM_COLUMNS} FROM order_items
         WHERE seller_id = $1 AND order_id = ANY($2) ORDER BY order_id, line_no"
    ))
    .bind(seller)
    .bind(orders)
    .fetch_all(db)
    .await
}

/// Mark `seller`'s unshipped lines of the order shipped; returns how many lines of the order are
/// still unshipped afterwards.
pub async fn ship_lines(
    conn: &mut PgConnection,
    order_id: Uuid,
    seller: Uuid,
    tracking: Option<&str>,
) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "UPDATE order_items SET shipped_at = now(), tracking_number = $3
         WHERE order_id = $1 AND seller_id = $2 AND shipped_at IS NULL",
    )
    .bind(order_id)
    .bind(seller)
    .bind(tracking)
    .execute(&mut *conn)
    .await?;
    sqlx::query_scalar(
        "SELECT count(*) FROM order_items WHERE order_id = $1 AND shipped_at IS NULL",
    )
    .bind(order_id)
    .fetch_one(&mut *conn)
    .await
}

/// A status change: the states it may leave, where it goes, and what it sets on the way.
pub struct Transition<'a> {
    /// `cancel`, `ship`, `deliver`, `deadline`, or the type of the event that caused it.
    pub trigger: &'a str,
    pub from: &'a [Status],
    pub to: Status,
    pub payment_status: Option<PaymentStatus>,
    pub cancel_reason: Option<CancelReason>,
    pub note: Option<&'a str>,
    pub details: Option<Value>,
}

pub enum Applied {
    /// The change was made; `previous` is the status it left.
    Done { previous: Status, order: OrderRow },
    /// The order is in a state the change may not leave.
    Refused(OrderRow),
    /// No such order.
    Missing,
}

/// Apply `t` to the order as one conditional `UPDATE` (the row locked by it), and write the
/// history row of the change. Of two transactions racing for one order, the second re-reads the
/// row after the first commits and its `status = ANY(from)` decides again, so both can never win.
pub async fn transition(
    conn: &mut PgConnection,
    id: Uuid,
    t: &Transition<'_>,
) -> Result<Applied, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(try_from = "String")]
        previous_status: Status,
        #[sqlx(flatten)]
        order: OrderRow,
    }
    let from = Status::strs(t.from);
    let updated: Option<Row> = sqlx::query_as(&format!(
        "WITH prev AS (SELECT id, status FROM orders WHERE id = $1 FOR UPDATE)
         UPDATE orders o SET
             status = $3,
             payment_status = COALESCE($4, o.payment_status),
             cancel_reason = COALESCE($5, o.cancel_reason),
             cancel_note = COALESCE($6, o.cancel_note),
             deadline_at = CASE WHEN $3 IN ('pending', 'awaiting_payment') THEN o.deadline_at END,
             updated_at = now()
         FROM prev
         WHERE o.id = prev.id AND prev.status = ANY($2)
         RETURNING prev.status AS previous_status, {}",
        ORDER_COLUMNS
            .split(", ")
            .map(|c| format!("o.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .bind(id)
    .bind(&from)
    .bind(t.to.as_str())
    .bind(t.payment_status.map(PaymentStatus::as_str))
    .bind(t.cancel_reason.map(cancel_reason_str))
    .bind(t.note)
    .fetch_optional(&mut *conn)
    .await?;
    match updated {
        Some(row) => {
            record(
                conn,
                id,
                row.order.status,
                row.order.payment_status,
                t.trigger,
                t.cancel_reason.map(cancel_reason_str),
                true,
                t.details.as_ref(),
            )
            .await?;
            Ok(Applied::Done {
                previous: row.previous_status,
                order: row.order,
            })
        }
        None => Ok(match get(&mut *conn, id).await? {
            Some(order) => Applied::Refused(order),
            None => Applied::Missing,
        }),
    }
}

/// Mirror a payment status reported by the payment service, if the payment status the order shows
/// may lead to it; the order's own status does not change. Returns the order after the change, or
/// `None` when the change does not apply (already there, or out of order).
pub async fn set_payment_status(
    conn: &mut PgConnection,
    id: Uuid,
    to: PaymentStatus,
) -> Result<Option<OrderRow>, sqlx::Error> {
    let from: Vec<&str> = to.reachable_from().iter().map(|p| p.as_str()).collect();
    sqlx::query_as(&format!(
        "UPDATE orders SET payment_status = $2, updated_at = now()
         WHERE id = $1 AND payment_status = ANY($3)
         RETURNING {ORDER_COLUMNS}"
    ))
    .bind(id)
    .bind(to.as_str())
    .bind(&from)
    .fetch_optional(&mut *conn)
    .await
}

/// Up to `limit` unpaid orders whose deadline passed, locked; rows another sweeper holds are
/// skipped, so two sweepers never take the same order.
pub async fn claim_due(conn: &mut PgConnection, limit: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM orders
         WHERE deadline_at <= now() AND status = ANY($1)
         ORDER BY deadline_at
         LIMIT $2
         FOR UPDATE SKIP LOCKED",
    )
    .bind(Status::strs(&Status::UNPAID))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
}

/// Whether `seller` has a line in the order.
pub async fn seller_has_lines(
    db: impl PgExecutor<'_>,
    order_id: Uuid,
    seller: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM order_items WHERE order_id = $1 AND seller_id = $2)",
    )
    .bind(order_id)
    .bind(seller)
    .fetch_one(db)
    .await
}

/// Whether any line of the order has shipped.
pub async fn any_line_shipped(
    conn: &mut PgConnection,
    order_id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM order_items WHERE order_id = $1 AND shipped_at IS NOT NULL)",
    )
    .bind(order_id)
    .fetch_one(&mut *conn)
    .await
}
