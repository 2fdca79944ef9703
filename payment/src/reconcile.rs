//! Reconciliation: every payment's state against its ledger postings. What each state implies:
//!
//! | status         | postings                               |
//! |----------------|----------------------------------------|
//! | requested      | none                                   |
//! | failed         | none                                   |
//! | authorized     | authorization                          |
//! | capture_failed | authorization                          |
//! | captured       | authorization, capture                 |
//! | voided         | authorization, void                    |
//! | refunded       | authorization, capture, refund         |
//!
//! and the authorization and the capture are for the payment's amount, and a voided or refunded
//! payment nets to zero on every account it touched. The answer lists each payment that differs.

use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Mismatch {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub status: String,
    pub problem: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Reconciliation {
    pub payments_checked: i64,
    pub mismatches: Vec<Mismatch>,
}

fn expected(status: &str) -> &'static [&'static str] {
    match status {
        "authorized" | "capture_failed" => &["authorization"],
        "captured" => &["authorization", "capture"],
        "voided" => &["authorization", "void"],
        "refunded" => &["authorization", "capture", "refund"],
        _ => &[],
    }
}

pub async fn run<'c, E>(db: E) -> Result<Reconciliation, sqlx::Error>
where
    E: PgExecutor<'c> + Copy,
{
    #[derive(sqlx::FromRow)]
    struct Row {
        id: Uuid,
        order_id: Uuid,
        status: String,
        amount: Decimal,
        kinds: Vec<String>,
        held: Option<Decimal>,
        cleared: Option<Decimal>,
        unbalanced_accounts: Vec<String>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT p.id, p.order_id, p.status, p.amount,
                COALESCE(ARRAY(SELECT t.kind FROM ledger_transactions t WHERE t.payment_id = p.id
                               ORDER BY CASE t.kind WHEN 'authorization' THEN 1 WHEN 'capture' THEN 2
                                                    WHEN 'void' THEN 3 ELSE 4 END), '{}') AS kinds,
                (SELECT sum(e.amount) FROM ledger_entries e
                   JOIN ledger_transactions t ON t.id = e.transaction_id
                   JOIN ledger_accounts a ON a.id = e.account_id
                  WHERE t.payment_id = p.id AND t.kind = 'authorization'
                    AND a.code LIKE 'gateway_holds:%' AND e.direction = 'debit') AS held,
                (SELECT sum(e.amount) FROM ledger_entries e
                   JOIN ledger_transactions t ON t.id = e.transaction_id
                   JOIN ledger_accounts a ON a.id = e.account_id
                  WHERE t.payment_id = p.id AND t.kind = 'capture'
                    AND a.code LIKE 'gateway_clearing:%' AND e.direction = 'debit') AS cleared,
                COALESCE(ARRAY(
                    SELECT a.code FROM ledger_entries e
                      JOIN ledger_transactions t ON t.id = e.transaction_id
                      JOIN ledger_accounts a ON a.id = e.account_id
                     WHERE t.payment_id = p.id AND p.status IN ('voided', 'refunded')
                     GROUP BY a.code
                    HAVING sum(CASE WHEN e.direction = 'debit' THEN e.amount ELSE -e.amount END) <> 0
                     ORDER BY a.code), '{}') AS unbalanced_accounts
         FROM payments p ORDER BY p.id",
    )
    .fetch_all(db)
    .await?;
    let mut mismatches = Vec::new();
    let checked = rows.len() as i64;
    for r in rows {
        let mut problems = Vec::new();
        let want = expected(&r.status);
        if r.kinds.iter().map(String::as_str).ne(want.iter().copied()) {
            problems.push(format!("postings {:?}, expected {:?}", r.kinds, want));
        }
        if r.kinds.iter().any(|k| k == "authorization") && r.held != Some(r.amount) {
            problems.push(format!(
                "authorization of {:?}, payment of {}",
                r.held, r.amount
            ));
        }
        if r.kinds.iter().any(|k| k == "capture") && r.cleared != Some(r.amount) {
            problems.push(format!(
                "capture of {:?}, payment of {}",
                r.cleared, r.amount
            ));
        }
        if !r.unbalanced_accounts.is_empty() {
            problems.push(format!(
                "does not net to zero on {}",
                r.unbalanced_accounts.join(", ")
            ));
        }
        if !problems.is_empty() {
            mismatches.push(Mismatch {
                payment_id: r.id,
                order_id: r.order_id,
                status: r.status,
                problem: problems.join("; "),
            });
        }
    }
    Ok(Reconciliation {
        payments_checked: checked,
        mismatches,
    })
}
