//! The double-entry ledger (contract §8). Every money movement of a payment is one journal
//! transaction of balanced entries; PostgreSQL rejects at commit a transaction that does not
//! balance in every currency or has fewer than two entries, and refuses to update or delete
//! entries (migrations/payment). Balances are derived from the entries.
//!
//! Accounts (per currency):
//! - `gateway_holds:CUR` (asset): authorized funds the gateway holds for the platform;
//! - `buyer_holds:CUR` (liability): the same funds, owed back to buyers until captured;
//! - `gateway_clearing:CUR` (asset): captured money the gateway owes the platform;
//! - `seller_payable:<seller>:CUR` (liability): what the platform owes a seller;
//! - `commission_revenue:CUR` (revenue): the platform's commission.
//!
//! Postings: authorization `Dr gateway_holds / Cr buyer_holds`; capture releases the hold (the
//! reverse) and books `Dr gateway_clearing` (total) against `Cr seller_payable` (each seller's
//! subtotal minus commission) and `Cr commission_revenue`; void reverses the authorization;
//! refund reverses the capture's booking. A voided or refunded payment nets to zero everywhere.

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Authorization,
    Capture,
    Void,
    Refund,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Authorization => "authorization",
            Kind::Capture => "capture",
            Kind::Void => "void",
            Kind::Refund => "refund",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Debit,
    Credit,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Debit => "debit",
            Direction::Credit => "credit",
        }
    }

    fn flip(self) -> Self {
        match self {
            Direction::Debit => Direction::Credit,
            Direction::Credit => Direction::Debit,
        }
    }
}

/// An account, identified by its code.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Account {
    pub code: String,
    pub kind: &'static str,
    pub currency: String,
    pub seller_id: Option<Uuid>,
}

impl Account {
    fn of(name: &str, kind: &'static str, currency: &str) -> Self {
        Self {
            code: format!("{name}:{currency}"),
            kind,
            currency: currency.to_owned(),
            seller_id: None,
        }
    }
    pub fn gateway_holds(currency: &str) -> Self {
        Self::of("gateway_holds", "asset", currency)
    }
    pub fn buyer_holds(currency: &str) -> Self {
        Self::of("buyer_holds", "liability", currency)
    }
    pub fn gateway_clearing(currency: &str) -> Self {
        Self::of("gateway_clearing", "asset", currency)
    }
    pub fn commission_revenue(currency: &str) -> Self {
        Self::of("commission_revenue", "revenue", currency)
    }
    pub fn seller_payable(seller: Uuid, currency: &str) -> Self {
        Self {
            code: format!("seller_payable:{seller}:{currency}"),
            kind: "liability",
            currency: currency.to_owned(),
            seller_id: Some(seller),
        }
    }

    fn normal_balance(&self) -> &'static str {
        match self.kind {
            "asset" | "expense" => "debit",
            _ => "credit",
        }
    }
}

/// The id of `account`, created on first use.
async fn account_id(conn: &mut PgConnection, account: &Account) -> Result<i64, sqlx::Error> {
    if let Some(id) = sqlx::query_scalar("SELECT id FROM ledger_accounts WHERE code = $1")
        .bind(&account.code)
        .fetch_optional(&mut *conn)
        .await?
    {
        return Ok(id);
    }
    sqlx::query(
        "INSERT INTO ledger_accounts (code, type, normal_balance, currency, seller_id)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (code) DO NOTHING",
    )
    .bind(&account.code)
    .bind(account.kind)
    .bind(account.normal_balance())
    .bind(&account.currency)
    .bind(account.seller_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query_scalar("SELECT id FROM ledger_accounts WHERE code = $1")
        .bind(&account.code)
        .fetch_one(&mut *conn)
        .await
}

pub type Entry = (Account, Direction, Decimal);

/// An amount as the API shows money: the currency's minor digits exactly (`45.00`, `1500` JPY).
pub fn money(amount: Decimal, currency: &str) -> String {
    match currency.parse::<shared::money::Currency>() {
        Ok(c) => shared::money::rounded(amount, c).to_string(),
        Err(_) => amount.normalize().to_string(),
    }
}

/// Post one journal transaction. The database checks it balances when the surrounding
/// transaction commits, and that the payment has no other posting of this kind.
pub async fn post(
    conn: &mut PgConnection,
    kind: Kind,
    order_id: Uuid,
    payment_id: Uuid,
    entries: &[Entry],
) -> Result<Uuid, sqlx::Error> {
    let tx_id = shared::id::new_id();
    sqlx::query(
        "INSERT INTO ledger_transactions (id, kind, order_id, payment_id) VALUES ($1, $2, $3, $4)",
    )
    .bind(tx_id)
    .bind(kind.as_str())
    .bind(order_id)
    .bind(payment_id)
    .execute(&mut *conn)
    .await?;
    for (account, direction, amount) in entries {
        let id = account_id(conn, account).await?;
        sqlx::query(
            "INSERT INTO ledger_entries (transaction_id, account_id, direction, amount, currency)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(tx_id)
        .bind(id)
        .bind(direction.as_str())
        .bind(amount)
        .bind(&account.currency)
        .execute(&mut *conn)
        .await?;
    }
    Ok(tx_id)
}

/// `amount × rate` rounded half-even to the currency's minor unit.
pub fn commission(amount: Decimal, rate: Decimal, minor_units: u32) -> Decimal {
    (amount * rate).round_dp_with_strategy(minor_units, RoundingStrategy::MidpointNearestEven)
}

/// The entries of an authorization hold.
pub fn authorization(amount: Decimal, currency: &str) -> Vec<Entry> {
    vec![
        (Account::gateway_holds(currency), Direction::Debit, amount),
        (Account::buyer_holds(currency), Direction::Credit, amount),
    ]
}

/// The entries of a void (the hold released).
pub fn void(amount: Decimal, currency: &str) -> Vec<Entry> {
    reverse(&authorization(amount, currency))
}

/// The entries of a capture: the hold released, the gateway owing the total, each seller owed
/// their subtotal minus commission, the platform its commission. The parts add up to the total
/// exactly, since each payable is its subtotal minus that subtotal's rounded commission.
pub fn capture(
    amount: Decimal,
    currency: &str,
    minor_units: u32,
    seller_amounts: &[(Uuid, Decimal)],
    rate: Decimal,
) -> Vec<Entry> {
    let mut entries = void(amount, currency);
    entries.push((
        Account::gateway_clearing(currency),
        Direction::Debit,
        amount,
    ));
    let mut total_commission = Decimal::ZERO;
    let mut per_seller: BTreeMap<Uuid, Decimal> = BTreeMap::new();
    for (seller, subtotal) in seller_amounts {
        *per_seller.entry(*seller).or_default() += *subtotal;
    }
    for (seller, subtotal) in per_seller {
        let fee = commission(subtotal, rate, minor_units);
        total_commission += fee;
        let payable = subtotal - fee;
        if payable > Decimal::ZERO {
            entries.push((
                Account::seller_payable(seller, currency),
                Direction::Credit,
                payable,
            ));
        }
    }
    if total_commission > Decimal::ZERO {
        entries.push((
            Account::commission_revenue(currency),
            Direction::Credit,
            total_commission,
        ));
    }
    entries
}

/// The same entries in the other direction.
pub fn reverse(entries: &[Entry]) -> Vec<Entry> {
    entries
        .iter()
        .map(|(a, d, amount)| (a.clone(), d.flip(), *amount))
        .collect()
}

/// The entries of a refund: the capture's booking reversed (its hold release is not undone: the
/// hold stays released).
pub fn refund(capture_entries: &[Entry], currency: &str) -> Vec<Entry> {
    let holds = [
        Account::gateway_holds(currency).code,
        Account::buyer_holds(currency).code,
    ];
    reverse(
        &capture_entries
            .iter()
            .filter(|(a, _, _)| !holds.contains(&a.code))
            .cloned()
            .collect::<Vec<_>>(),
    )
}

/// The entries a payment's posting of `kind` made.
pub async fn entries_of(
    conn: &mut PgConnection,
    payment_id: Uuid,
    kind: Kind,
) -> Result<Vec<Entry>, sqlx::Error> {
    let rows: Vec<(String, String, String, Option<Uuid>, String, Decimal)> = sqlx::query_as(
        "SELECT a.code, a.type, a.currency, a.seller_id, e.direction, e.amount
         FROM ledger_entries e
         JOIN ledger_transactions t ON t.id = e.transaction_id
         JOIN ledger_accounts a ON a.id = e.account_id
         WHERE t.payment_id = $1 AND t.kind = $2 ORDER BY e.id",
    )
    .bind(payment_id)
    .bind(kind.as_str())
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(code, kind, currency, seller_id, direction, amount)| {
            let kind: &'static str = match kind.as_str() {
                "asset" => "asset",
                "revenue" => "revenue",
                "expense" => "expense",
                _ => "liability",
            };
            let direction = if direction == "debit" {
                Direction::Debit
            } else {
                Direction::Credit
            };
            (
                Account {
                    code,
                    kind,
                    currency,
                    seller_id,
                },
                direction,
                amount,
            )
        })
        .collect())
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TrialBalanceRow {
    pub currency: String,
    pub debits: String,
    pub credits: String,
    pub balanced: bool,
}

pub async fn trial_balance(db: impl PgExecutor<'_>) -> Result<Vec<TrialBalanceRow>, sqlx::Error> {
    let rows: Vec<(String, Decimal, Decimal)> = sqlx::query_as(
        "SELECT currency,
                COALESCE(sum(amount) FILTER (WHERE direction = 'debit'), 0),
                COALESCE(sum(amount) FILTER (WHERE direction = 'credit'), 0)
         FROM ledger_entries GROUP BY currency ORDER BY currency",
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(currency, debits, credits)| TrialBalanceRow {
            debits: money(debits, &currency),
            credits: money(credits, &currency),
            balanced: debits == credits,
            currency,
        })
        .collect())
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccountBalance {
    pub code: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub normal_balance: String,
    pub currency: String,
    pub seller_id: Option<Uuid>,
    /// In the account's normal direction (a liability's credit balance is positive).
    #[schema(example = "45.00")]
    pub balance: String,
}

pub async fn balances(
    db: impl PgExecutor<'_>,
    seller: Option<Uuid>,
) -> Result<Vec<AccountBalance>, sqlx::Error> {
    let rows: Vec<(String, String, String, String, Option<Uuid>, Decimal)> = sqlx::query_as(
        "SELECT code, type, normal_balance, currency, seller_id,
                CASE WHEN normal_balance = 'debit' THEN debit_balance ELSE -debit_balance END
         FROM ledger_balances
         WHERE $1::uuid IS NULL OR seller_id = $1
         ORDER BY code",
    )
    .bind(seller)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(code, kind, normal_balance, currency, seller_id, balance)| AccountBalance {
                balance: money(balance, &currency),
                code,
                kind,
                normal_balance,
                currency,
                seller_id,
            },
        )
        .collect())
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PostedEntry {
    pub account: String,
    pub direction: String,
    pub amount: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Posting {
    pub id: Uuid,
    pub kind: String,
    pub at: chrono::DateTime<chrono::Utc>,
    pub entries: Vec<PostedEntry>,
}

/// (transaction, kind, at, account code, direction, amount, currency)
type PostingRow = (
    Uuid,
    String,
    chrono::DateTime<chrono::Utc>,
    String,
    String,
    Decimal,
    String,
);

/// A payment's journal transactions with their entries, oldest first.
pub async fn postings(
    db: impl PgExecutor<'_>,
    payment_id: Uuid,
) -> Result<Vec<Posting>, sqlx::Error> {
    let rows: Vec<PostingRow> = sqlx::query_as(
        "SELECT t.id, t.kind, t.at, a.code, e.direction, e.amount, e.currency
             FROM ledger_transactions t
             JOIN ledger_entries e ON e.transaction_id = t.id
             JOIN ledger_accounts a ON a.id = e.account_id
             WHERE t.payment_id = $1 ORDER BY t.at, t.id, e.id",
    )
    .bind(payment_id)
    .fetch_all(db)
    .await?;
    let mut out: Vec<Posting> = Vec::new();
    for (id, kind, at, code, direction, amount, currency) in rows {
        if out.last().map(|p| p.id) != Some(id) {
            out.push(Posting {
                id,
                kind,
                at,
                entries: Vec::new(),
            });
        }
        if let Some(p) = out.last_mut() {
            p.entries.push(PostedEntry {
                account: code,
                direction,
                amount: money(amount, &currency),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(entries: &[Entry], d: Direction) -> Decimal {
        entries.iter().filter(|e| e.1 == d).map(|e| e.2).sum()
    }

    #[test]
    fn a_capture_splits_the_total_exactly_between_sellers_and_commission() {
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        // 0.10 × 0.05 = 0.005 → half-even 0.00; 0.10 × 0.15 = 0.015 → 0.02; 0.10 × 33.35 = 3.335 → 3.34
        let parts = [
            (a, Decimal::new(5, 2)),
            (b, Decimal::new(15, 2)),
            (c, Decimal::new(3335, 2)),
        ];
        let total: Decimal = parts.iter().map(|p| p.1).sum();
        let e = capture(total, "USD", 2, &parts, Decimal::new(10, 2));
        assert_eq!(sum(&e, Direction::Debit), sum(&e, Direction::Credit));
        let commission = e
            .iter()
            .find(|x| x.0.code == "commission_revenue:USD")
            .map(|x| x.2);
        assert_eq!(commission, Some(Decimal::new(336, 2)));
        let payable_c = e.iter().find(|x| x.0.seller_id == Some(c)).map(|x| x.2);
        assert_eq!(payable_c, Some(Decimal::new(3001, 2)));
    }

    #[test]
    fn half_even_rounding_goes_to_the_even_minor_unit() {
        assert_eq!(
            commission(Decimal::new(5, 2), Decimal::new(10, 2), 2),
            Decimal::ZERO
        );
        assert_eq!(
            commission(Decimal::new(15, 2), Decimal::new(10, 2), 2),
            Decimal::new(2, 2)
        );
        assert_eq!(
            commission(Decimal::new(125, 0), Decimal::new(10, 2), 0),
            Decimal::new(12, 0)
        );
    }

    #[test]
    fn a_refund_reverses_the_booking_but_not_the_released_hold() {
        let s = Uuid::now_v7();
        let cap = capture(
            Decimal::new(1000, 2),
            "EUR",
            2,
            &[(s, Decimal::new(1000, 2))],
            Decimal::new(10, 2),
        );
        let r = refund(&cap, "EUR");
        assert_eq!(r.len(), cap.len() - 2);
        assert!(r.iter().all(|x| !x.0.code.contains("holds")));
        assert_eq!(sum(&r, Direction::Debit), sum(&r, Direction::Credit));
    }
}
