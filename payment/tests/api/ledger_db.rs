//! The ledger's rules are PostgreSQL's, not only the code's: an unbalanced journal transaction, one
//! with a single entry, an entry in another currency than its account, and any change to a posted
//! entry are refused by the database itself (plain SQL here, no application code in the way).

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::helpers::*;

async fn setup() -> (shared::test_utils::TestDb, PgConnection, Uuid, i64, i64) {
    let db = test_db().await;
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    let payment = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO payments (id, order_id, buyer_id, amount, currency, payment_method, seller_amounts)
         VALUES ($1, $2, $3, 10, 'USD', 'tok_visa', '[]')",
    )
    .bind(payment)
    .bind(Uuid::now_v7())
    .bind(Uuid::now_v7())
    .execute(&mut conn)
    .await
    .unwrap();
    let a = account(&mut conn, "gateway_holds:USD", "asset", "debit").await;
    let b = account(&mut conn, "buyer_holds:USD", "liability", "credit").await;
    (db, conn, payment, a, b)
}

async fn account(conn: &mut PgConnection, code: &str, kind: &str, normal: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO ledger_accounts (code, type, normal_balance, currency)
         VALUES ($1, $2, $3, 'USD') RETURNING id",
    )
    .bind(code)
    .bind(kind)
    .bind(normal)
    .fetch_one(conn)
    .await
    .unwrap()
}

/// Post `entries` (account, direction, amount, currency) as one journal transaction; the error
/// the database gave, if any (at the insert or at commit).
async fn post(
    conn: &mut PgConnection,
    payment: Uuid,
    kind: &str,
    entries: &[(i64, &str, &str, &str)],
) -> Option<String> {
    let mut tx = conn.begin().await.unwrap();
    let id = Uuid::now_v7();
    let mut sql = format!(
        "INSERT INTO ledger_transactions (id, kind, order_id, payment_id) VALUES ('{id}', '{kind}', '{}', '{payment}');",
        Uuid::now_v7()
    );
    for (account, direction, amount, currency) in entries {
        sql.push_str(&format!(
            "INSERT INTO ledger_entries (transaction_id, account_id, direction, amount, currency)
             VALUES ('{id}', {account}, '{direction}', {amount}, '{currency}');"
        ));
    }
    if let Err(e) = sqlx::raw_sql(&sql).execute(&mut *tx).await {
        return Some(e.to_string());
    }
    tx.commit().await.err().map(|e| e.to_string())
}

#[tokio::test]
async fn the_database_refuses_unbalanced_single_sided_and_misfiled_postings() {
    let (_db, mut conn, payment, a, b) = setup().await;
    let err = post(
        &mut conn,
        payment,
        "authorization",
        &[(a, "debit", "10", "USD"), (b, "credit", "9.99", "USD")],
    )
    .await
    .expect("an unbalanced transaction is refused");
    assert!(err.contains("does not balance"), "{err}");
    let err = post(
        &mut conn,
        payment,
        "authorization",
        &[(a, "debit", "10", "USD")],
    )
    .await
    .expect("one entry is refused");
    assert!(err.contains("at least two"), "{err}");
    let err = post(&mut conn, payment, "authorization", &[])
        .await
        .expect("no entries is refused");
    assert!(err.contains("at least two"), "{err}");
    let err = post(
        &mut conn,
        payment,
        "authorization",
        &[(a, "debit", "10", "EUR"), (b, "credit", "10", "EUR")],
    )
    .await
    .expect("entries in another currency than their accounts are refused");
    assert!(err.contains("foreign key"), "{err}");
    let err = post(
        &mut conn,
        payment,
        "authorization",
        &[(a, "debit", "0", "USD"), (b, "credit", "0", "USD")],
    )
    .await
    .expect("zero amounts are refused");
    assert!(err.contains("ledger_entries_amount_positive"), "{err}");
    // Nothing of the refused attempts was kept.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger_entries")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 0);

    assert_eq!(
        post(
            &mut conn,
            payment,
            "authorization",
            &[(a, "debit", "10", "USD"), (b, "credit", "10", "USD")]
        )
        .await,
        None,
        "a balanced posting is kept"
    );
    let err = post(
        &mut conn,
        payment,
        "authorization",
        &[(a, "debit", "10", "USD"), (b, "credit", "10", "USD")],
    )
    .await
    .expect("a second authorization of one payment is refused");
    assert!(err.contains("ledger_transactions_once_per_kind"), "{err}");
}

#[tokio::test]
async fn posted_entries_and_transactions_cannot_be_changed_or_removed() {
    let (_db, mut conn, payment, a, b) = setup().await;
    assert_eq!(
        post(
            &mut conn,
            payment,
            "authorization",
            &[(a, "debit", "10", "USD"), (b, "credit", "10", "USD")]
        )
        .await,
        None
    );
    for sql in [
        "UPDATE ledger_entries SET amount = 1",
        "DELETE FROM ledger_entries",
        "TRUNCATE ledger_entries CASCADE",
        "UPDATE ledger_transactions SET kind = 'void'",
        "DELETE FROM ledger_transactions",
    ] {
        let err = sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .expect_err(sql)
            .to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger_entries")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn a_posted_journal_is_sealed_against_entries_added_later() {
    let (_db, mut conn, payment, a, b) = setup().await;
    assert_eq!(
        post(
            &mut conn,
            payment,
            "authorization",
            &[(a, "debit", "10", "USD"), (b, "credit", "10", "USD")]
        )
        .await,
        None
    );
    let journal: Uuid = sqlx::query_scalar("SELECT id FROM ledger_transactions")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    // A balanced pair, so only the seal can refuse it.
    let err = sqlx::raw_sql(&format!(
        "BEGIN;
         INSERT INTO ledger_entries (transaction_id, account_id, direction, amount, currency)
         VALUES ('{journal}', {a}, 'debit', 5, 'USD'), ('{journal}', {b}, 'credit', 5, 'USD');
         COMMIT;"
    ))
    .execute(&mut conn)
    .await
    .expect_err("entries added to a posted journal")
    .to_string();
    assert!(err.contains("sealed"), "{err}");
    let _ = sqlx::raw_sql("ROLLBACK").execute(&mut conn).await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger_entries")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(n, 2);
}
