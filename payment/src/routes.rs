//! Payment's routes, their answers and the OpenAPI document.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::auth::{AdminUser, AuthUser, Role};
use shared::error::ErrorBody;
use shared::extract::AppPath;
use shared::server::BearerAuth;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use crate::error::{PaymentError, Result};
use crate::ledger::{self, AccountBalance, Posting, TrialBalanceRow};
use crate::payments::{self as repo, Attempt, Status};
use crate::reconcile::{self, Reconciliation};
use crate::startup::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    pub id: Uuid,
    pub order_id: Uuid,
    pub buyer_id: Uuid,
    pub status: Status,
    #[schema(example = "40.00")]
    pub amount: String,
    pub currency: String,
    pub payment_method: String,
    pub gateway_reference: Option<String>,
    pub failure_reason: Option<String>,
    /// The gateway call still owed (`authorize`, `capture`, `void`, `refund`) and when it is due.
    pub pending_operation: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempts: Vec<Attempt>,
    pub ledger: Vec<Posting>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SellerBalance {
    pub seller_id: Uuid,
    /// The seller's payable account per currency (what the platform owes them).
    pub accounts: Vec<AccountBalance>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrialBalance {
    /// Debits equal credits in every currency.
    pub balanced: bool,
    pub currencies: Vec<TrialBalanceRow>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountList {
    pub items: Vec<AccountBalance>,
}

#[utoipa::path(get, path = "/api/v1/payments/{order_id}", params(("order_id" = Uuid, Path)), tag = "payments", security(("bearer" = [])),
    responses((status = 200, body = PaymentView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_payment(
    State(state): State<AppState>,
    caller: AuthUser,
    AppPath(order_id): AppPath<Uuid>,
) -> Result<Json<PaymentView>> {
    // One snapshot for the payment, its attempts and its postings.
    let mut tx = state.db.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let p = repo::by_order(&mut *tx, order_id)
        .await?
        .ok_or(PaymentError::NotFound)?;
    // The buyer's own payment, or any for an admin; for everyone else it does not exist.
    if p.buyer_id != caller.id && !caller.is_admin() {
        return Err(PaymentError::NotFound);
    }
    let attempts = repo::attempts(&mut *tx, p.id).await?;
    let ledger = ledger::postings(&mut *tx, p.id).await?;
    tx.commit().await?;
    Ok(Json(PaymentView {
        id: p.id,
        order_id: p.order_id,
        buyer_id: p.buyer_id,
        status: p.status,
        amount: ledger::money(p.amount, &p.currency),
        currency: p.currency.clone(),
        payment_method: p.payment_method.clone(),
        gateway_reference: p.gateway_reference.clone(),
        failure_reason: p.failure_reason.clone(),
        pending_operation: p.pending_op.clone(),
        next_attempt_at: p.next_attempt_at,
        attempts,
        ledger,
        created_at: p.created_at,
        updated_at: p.updated_at,
    }))
}

#[utoipa::path(get, path = "/api/v1/payments/seller/me/balance", tag = "payments", security(("bearer" = [])),
    responses((status = 200, body = SellerBalance), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn seller_balance(
    State(state): State<AppState>,
    caller: AuthUser,
) -> Result<Json<SellerBalance>> {
    caller.require(&[Role::Seller])?;
    let accounts = ledger::balances(&state.db, Some(caller.id)).await?;
    Ok(Json(SellerBalance {
        seller_id: caller.id,
        accounts,
    }))
}

#[utoipa::path(get, path = "/api/v1/ledger/trial-balance", tag = "ledger", security(("bearer" = [])),
    responses((status = 200, body = TrialBalance), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn trial_balance(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<Json<TrialBalance>> {
    let currencies = ledger::trial_balance(&state.db).await?;
    Ok(Json(TrialBalance {
        balanced: currencies.iter().all(|c| c.balanced),
        currencies,
    }))
}

#[utoipa::path(get, path = "/api/v1/ledger/accounts", tag = "ledger", security(("bearer" = [])),
    responses((status = 200, body = AccountList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn accounts(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<Json<AccountList>> {
    Ok(Json(AccountList {
        items: ledger::balances(&state.db, None).await?,
    }))
}

#[utoipa::path(get, path = "/api/v1/ledger/reconciliation", tag = "ledger", security(("bearer" = [])),
    responses((status = 200, body = Reconciliation), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn reconciliation(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<Json<Reconciliation>> {
    Ok(Json(reconcile::run(&state.db).await?))
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/payments/seller/me/balance", get(seller_balance))
        .route("/api/v1/payments/{order_id}", get(get_payment))
        .route("/api/v1/ledger/trial-balance", get(trial_balance))
        .route("/api/v1/ledger/accounts", get(accounts))
        .route("/api/v1/ledger/reconciliation", get(reconciliation))
        .with_state(state)
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Koupang payment", description = "Payments of orders and the double-entry ledger."),
    paths(get_payment, seller_balance, trial_balance, accounts, reconciliation),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
