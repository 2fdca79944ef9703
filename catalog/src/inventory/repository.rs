//! Inventory SQL: locks, reservations, and the counter updates of the three saga steps.

use rust_decimal::Decimal;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

/// Serialise all inventory work on one order (a redelivery racing a late duplicate, or two
/// replicas during a rebalance), so "already reserved?" and the reservation are one decision.
pub async fn lock_order(conn: &mut PgConnection, order: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7001))")
        .bind(order)
        .execute(conn)
        .await
        .map(|_| ())
}

#[derive(Debug, sqlx::FromRow)]
pub struct LockedSku {
    pub id: Uuid,
    pub price: Decimal,
    pub currency: String,
    pub status: String,
    pub deleted: bool,
    pub stock_quantity: i32,
    pub reserved_quantity: i32,
    pub product_status: String,
    pub product_deleted: bool,
}

/// Share-lock the products of these SKUs, in id order, before their SKUs are locked: the lock
/// order of every catalog writer is product, then SKUs. A product write (an archive, a
/// deactivation) locks the product row `FOR UPDATE`, so it waits for a reservation in progress
/// and a reservation waits for it; the reservation then reads the product's committed status,
/// never one an archive changed while the reservation was waiting for a SKU. Reservations of
/// one product still run side by side (shared locks do not conflict).
pub async fn share_lock_products_of(
    conn: &mut PgConnection,
    skus: &[Uuid],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT id FROM products
         WHERE id IN (SELECT product_id FROM skus WHERE id = ANY($1))
         ORDER BY id
         FOR SHARE",
    )
    .bind(skus)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Lock the SKUs (in id order: the lock order every inventory writer uses) and read what a
/// reservation must check.
pub async fn lock_skus_for_reservation(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<Vec<LockedSku>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.id, s.price, s.currency::text AS currency, s.status,
                s.deleted_at IS NOT NULL AS deleted, s.stock_quantity, s.reserved_quantity,
                p.status AS product_status, p.deleted_at IS NOT NULL AS product_deleted
         FROM skus s JOIN products p ON p.id = s.product_id
         WHERE s.id = ANY($1)
         ORDER BY s.id
         FOR UPDATE OF s",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// Lock SKU rows in id order.
pub async fn lock_skus(conn: &mut PgConnection, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT id FROM skus WHERE id = ANY($1) ORDER BY id FOR UPDATE")
        .bind(ids)
        .execute(conn)
        .await
        .map(|_| ())
}

/// What inventory has done for an order (the `inventory_orders` record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderState {
    Reserved,
    Failed,
    Released,
    Committed,
}

impl OrderState {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Reserved => "reserved",
            OrderState::Failed => "failed",
            OrderState::Released => "released",
            OrderState::Committed => "committed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            OrderState::Reserved,
            OrderState::Failed,
            OrderState::Released,
            OrderState::Committed,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// The order's record, locked (`None`: inventory has not seen the order yet). Called under the
/// order's advisory lock, which is what serialises a first record's creation.
pub async fn lock_order_state(
    conn: &mut PgConnection,
    order: Uuid,
) -> Result<Option<OrderState>, sqlx::Error> {
    let raw: Option<String> =
        sqlx::query_scalar("SELECT state FROM inventory_orders WHERE order_id = $1 FOR UPDATE")
            .bind(order)
            .fetch_optional(conn)
            .await?;
    match raw {
        None => Ok(None),
        Some(s) => OrderState::parse(&s).map(Some).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown inventory order state {s}").into())
        }),
    }
}

/// Record the order's new state.
pub async fn set_order_state(
    conn: &mut PgConnection,
    order: Uuid,
    state: OrderState,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO inventory_orders (order_id, state) VALUES ($1, $2)
         ON CONFLICT (order_id) DO UPDATE SET state = EXCLUDED.state, updated_at = now()",
    )
    .bind(order)
    .bind(state.as_str())
    .execute(conn)
    .await
    .map(|_| ())
}

/// Hold `quantities[i]` of `skus[i]` for `order`.
pub async fn hold(
    conn: &mut PgConnection,
    order: Uuid,
    skus: &[Uuid],
    quantities: &[i32],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE skus SET reserved_quantity = reserved_quantity + v.q, updated_at = now()
         FROM unnest($1::uuid[], $2::int[]) AS v(id, q) WHERE skus.id = v.id",
    )
    .bind(skus)
    .bind(quantities)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO reservations (order_id, sku_id, quantity)
         SELECT $1, v.id, v.q FROM unnest($2::uuid[], $3::int[]) AS v(id, q)",
    )
    .bind(order)
    .bind(skus)
    .bind(quantities)
    .execute(conn)
    .await
    .map(|_| ())
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct Reservation {
    pub order_id: Uuid,
    pub sku_id: Uuid,
    pub quantity: i32,
    pub status: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// The order's reservations, locked.
pub async fn lock_reservations(
    conn: &mut PgConnection,
    order: Uuid,
) -> Result<Vec<Reservation>, sqlx::Error> {
    sqlx::query_as(
        "SELECT order_id, sku_id, quantity, status, created_at, updated_at FROM reservations
         WHERE order_id = $1 ORDER BY sku_id FOR UPDATE",
    )
    .bind(order)
    .fetch_all(conn)
    .await
}

pub async fn reservations(
    db: impl PgExecutor<'_>,
    order: Uuid,
) -> Result<Vec<Reservation>, sqlx::Error> {
    sqlx::query_as(
        "SELECT order_id, sku_id, quantity, status, created_at, updated_at FROM reservations
         WHERE order_id = $1 ORDER BY sku_id",
    )
    .bind(order)
    .fetch_all(db)
    .await
}

/// Held units leave the shelf for good: stock and reserved go down, sold goes up.
pub async fn commit_held(
    conn: &mut PgConnection,
    order: Uuid,
    skus: &[Uuid],
    quantities: &[i32],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE skus SET stock_quantity = stock_quantity - v.q,
                         reserved_quantity = reserved_quantity - v.q,
                         sold_quantity = sold_quantity + v.q,
                         updated_at = now()
         FROM unnest($1::uuid[], $2::int[]) AS v(id, q) WHERE skus.id = v.id",
    )
    .bind(skus)
    .bind(quantities)
    .execute(&mut *conn)
    .await?;
    set_status(&mut *conn, order, "held", "committed").await?;
    movements(conn, order, "commit", skus, quantities, -1).await
}

/// Held units go back to being available.
pub async fn release_held(
    conn: &mut PgConnection,
    order: Uuid,
    skus: &[Uuid],
    quantities: &[i32],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE skus SET reserved_quantity = reserved_quantity - v.q, updated_at = now()
         FROM unnest($1::uuid[], $2::int[]) AS v(id, q) WHERE skus.id = v.id",
    )
    .bind(skus)
    .bind(quantities)
    .execute(&mut *conn)
    .await?;
    set_status(conn, order, "held", "released").await
}

/// Committed (sold) units come back on the shelf.
pub async fn restock_committed(
    conn: &mut PgConnection,
    order: Uuid,
    skus: &[Uuid],
    quantities: &[i32],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE skus SET stock_quantity = stock_quantity + v.q,
                         sold_quantity = sold_quantity - v.q,
                         updated_at = now()
         FROM unnest($1::uuid[], $2::int[]) AS v(id, q) WHERE skus.id = v.id",
    )
    .bind(skus)
    .bind(quantities)
    .execute(&mut *conn)
    .await?;
    set_status(&mut *conn, order, "committed", "restocked").await?;
    movements(conn, order, "restock", skus, quantities, 1).await
}

async fn set_status(
    conn: &mut PgConnection,
    order: Uuid,
    from: &str,
    to: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE reservations SET status = $3, updated_at = now() WHERE order_id = $1 AND status = $2",
    )
    .bind(order)
    .bind(from)
    .bind(to)
    .execute(conn)
    .await
    .map(|_| ())
}

async fn movements(
    conn: &mut PgConnection,
    order: Uuid,
    kind: &str,
    skus: &[Uuid],
    quantities: &[i32],
    sign: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO stock_movements (sku_id, kind, delta, order_id)
         SELECT v.id, $2, $3 * v.q, $1 FROM unnest($4::uuid[], $5::int[]) AS v(id, q)",
    )
    .bind(order)
    .bind(kind)
    .bind(sign)
    .bind(skus)
    .bind(quantities)
    .execute(conn)
    .await
    .map(|_| ())
}

/// The products whose SKUs these are (for cache invalidation).
pub async fn products_of(db: impl PgExecutor<'_>, skus: &[Uuid]) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT DISTINCT product_id FROM skus WHERE id = ANY($1)")
        .bind(skus)
        .fetch_all(db)
        .await
}
