//! Stock conservation, checked from the evidence: for each SKU the counters on the row are
//! compared with what the append-only stock history and the reservations say they must be.
//!
//! - conserved: `initial + adjustments = available + reserved + sold`
//! - sold: `sold = committed - restocked` (from the history) = units of committed reservations
//! - reserved: `reserved = units of held reservations`
//! - every held reservation belongs to an order whose record says `reserved` (no stock held for
//!   a failed, cancelled or sold order)

use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct SkuAudit {
    pub sku_id: Uuid,
    pub sku_code: String,
    pub initial_stock: i64,
    pub adjustments: i64,
    pub available: i64,
    pub reserved: i64,
    pub sold: i64,
    pub held_reservations: i64,
    /// Held units of orders whose inventory record is not `reserved` (must be 0).
    pub stray_holds: i64,
    pub committed_reservations: i64,
    pub committed_movements: i64,
    pub restocked_movements: i64,
    pub consistent: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditReport {
    /// True when every checked SKU is consistent.
    pub consistent: bool,
    pub checked: i64,
    /// The SKU asked for, or else every inconsistent SKU.
    pub items: Vec<SkuAudit>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct AuditQuery {
    pub sku_id: Option<Uuid>,
}

pub async fn run(db: impl PgExecutor<'_>, sku: Option<Uuid>) -> Result<AuditReport, sqlx::Error> {
    let rows: Vec<SkuAudit> = sqlx::query_as(
        "WITH m AS (
             SELECT sku_id,
                    coalesce(sum(delta) FILTER (WHERE kind = 'initial'), 0) AS initial_stock,
                    coalesce(sum(delta) FILTER (WHERE kind = 'adjustment'), 0) AS adjustments,
                    coalesce(-sum(delta) FILTER (WHERE kind = 'commit'), 0) AS committed,
                    coalesce(sum(delta) FILTER (WHERE kind = 'restock'), 0) AS restocked
             FROM stock_movements WHERE ($1::uuid IS NULL OR sku_id = $1) GROUP BY sku_id
         ), r AS (
             SELECT r.sku_id,
                    coalesce(sum(r.quantity) FILTER (WHERE r.status = 'held'), 0) AS held,
                    coalesce(sum(r.quantity) FILTER (WHERE r.status = 'committed'), 0) AS committed,
                    coalesce(sum(r.quantity) FILTER (
                        WHERE r.status = 'held' AND o.state IS DISTINCT FROM 'reserved'), 0)
                        AS stray
             FROM reservations r LEFT JOIN inventory_orders o ON o.order_id = r.order_id
             WHERE ($1::uuid IS NULL OR r.sku_id = $1) GROUP BY r.sku_id
         ), a AS (
             SELECT s.id AS sku_id, s.sku_code,
                    coalesce(m.initial_stock, 0)::bigint AS initial_stock,
                    coalesce(m.adjustments, 0)::bigint AS adjustments,
                    (s.stock_quantity - s.reserved_quantity)::bigint AS available,
                    s.reserved_quantity::bigint AS reserved,
                    s.sold_quantity::bigint AS sold,
                    coalesce(r.held, 0)::bigint AS held_reservations,
                    coalesce(r.stray, 0)::bigint AS stray_holds,
                    coalesce(r.committed, 0)::bigint AS committed_reservations,
                    coalesce(m.committed, 0)::bigint AS committed_movements,
                    coalesce(m.restocked, 0)::bigint AS restocked_movements
             FROM skus s
             LEFT JOIN m ON m.sku_id = s.id
             LEFT JOIN r ON r.sku_id = s.id
             WHERE ($1::uuid IS NULL OR s.id = $1)
         )
         SELECT a.*,
                (initial_stock + adjustments = available + reserved + sold
                 AND sold = committed_movements - restocked_movements
                 AND sold = committed_reservations
                 AND reserved = held_reservations
                 AND stray_holds = 0) AS consistent
         FROM a ORDER BY sku_id",
    )
    .bind(sku)
    .fetch_all(db)
    .await?;
    let checked = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let consistent = rows.iter().all(|r| r.consistent);
    let items = if sku.is_some() {
        rows
    } else {
        rows.into_iter().filter(|r| !r.consistent).collect()
    };
    Ok(AuditReport {
        consistent,
        checked,
        items,
    })
}
