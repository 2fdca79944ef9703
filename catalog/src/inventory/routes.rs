//! Admin views of inventory: the conservation audit and an order's reservations.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use shared::auth::AdminUser;
use shared::error::ErrorBody;
use shared::extract::{AppPath, AppQuery};
use utoipa::ToSchema;
use uuid::Uuid;

use super::audit::{self, AuditQuery, AuditReport};
use super::repository::{self, Reservation};
use crate::error::Result;
use crate::startup::AppState;

#[utoipa::path(get, path = "/api/v1/inventory/audit", tag = "inventory", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = AuditReport), (status = 403, body = ErrorBody)))]
pub async fn audit(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppQuery(q): AppQuery<AuditQuery>,
) -> Result<Json<AuditReport>> {
    Ok(Json(audit::run(&state.db, q.sku_id).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReservationList {
    pub items: Vec<Reservation>,
}

#[utoipa::path(get, path = "/api/v1/inventory/reservations/{order_id}", params(("order_id" = Uuid, Path)), tag = "inventory", security(("bearer" = [])),
    responses((status = 200, body = ReservationList), (status = 403, body = ErrorBody)))]
pub async fn reservations(
    State(state): State<AppState>,
    _admin: AdminUser,
    AppPath(order): AppPath<Uuid>,
) -> Result<Json<ReservationList>> {
    Ok(Json(ReservationList {
        items: repository::reservations(&state.db, order).await?,
    }))
}
