//! The payment API: who sees a payment (BOLA), the seller's balance, and the admin's ledger views.

use reqwest::StatusCode;
use serde_json::Value;
use shared::auth::Role;
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test]
async fn a_payment_is_seen_by_its_buyer_and_admins_only() {
    let app = TestApp::manual().await;
    let w = app.worker();
    let (buyer, other, seller, admin) = (
        user(Role::Buyer),
        user(Role::Buyer),
        user(Role::Seller),
        user(Role::Admin),
    );
    let order = Uuid::now_v7();
    app.handle(&request(
        order,
        buyer.id,
        "tok_timeout",
        &[(seller.id, dec("8.00"))],
    ))
    .await;
    app.drain(&w).await;
    shared::test_utils::eventually(
        "the authorization after its retries",
        std::time::Duration::from_secs(10),
        || async {
            app.drain(&w).await;
            (app.status(order).await.as_deref() == Some("authorized")).then_some(())
        },
    )
    .await;
    let path = format!("/api/v1/payments/{order}");

    for who in [&buyer, &admin] {
        let resp = app.get_auth(&path, &who.token).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let p: Value = resp.json().await.unwrap();
        assert_eq!(p["status"], "authorized");
        assert_eq!(p["amount"], "8.00");
        assert_eq!(p["attempts"].as_array().unwrap().len(), 3, "{p}");
        assert_eq!(p["ledger"][0]["kind"], "authorization");
        assert_eq!(p["ledger"][0]["entries"].as_array().unwrap().len(), 2);
    }
    // Another buyer, the seller of the line: no such payment. Nobody at all: 401.
    for who in [&other, &seller] {
        let resp = app.get_auth(&path, &who.token).await;
        assert_error(resp, StatusCode::NOT_FOUND, "PAYMENT_NOT_FOUND").await;
    }
    assert_error(
        app.get(&path).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    )
    .await;
    let resp = app
        .get_auth(
            &format!("/api/v1/payments/{}", Uuid::now_v7()),
            &admin.token,
        )
        .await;
    assert_error(resp, StatusCode::NOT_FOUND, "PAYMENT_NOT_FOUND").await;
    let resp = app.get_auth("/api/v1/payments/nope", &admin.token).await;
    assert_error(resp, StatusCode::BAD_REQUEST, "INVALID_PATH").await;

    // The ledger views are the admin's; the balance is a seller's.
    for path in [
        "/api/v1/ledger/trial-balance",
        "/api/v1/ledger/accounts",
        "/api/v1/ledger/reconciliation",
    ] {
        for who in [&buyer, &seller] {
            let resp = app.get_auth(path, &who.token).await;
            assert_error(resp, StatusCode::FORBIDDEN, "FORBIDDEN").await;
        }
        assert_eq!(
            app.get_auth(path, &admin.token).await.status(),
            StatusCode::OK
        );
    }
    let resp = app
        .get_auth("/api/v1/payments/seller/me/balance", &buyer.token)
        .await;
    assert_error(resp, StatusCode::FORBIDDEN, "FORBIDDEN").await;

    let trial: Value = app
        .get_auth("/api/v1/ledger/trial-balance", &admin.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(trial["balanced"], true);
    assert_eq!(trial["currencies"][0]["currency"], "USD");
    let rec: Value = app
        .get_auth("/api/v1/ledger/reconciliation", &admin.token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rec["payments_checked"], 1);
    assert_eq!(rec["mismatches"], serde_json::json!([]));
    let accounts: Value = app
        .get_auth("/api/v1/ledger/accounts", &admin.token)
        .await
        .json()
        .await
        .unwrap();
    let codes: Vec<&str> = accounts["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["buyer_holds:USD", "gateway_holds:USD"]);
}

#[tokio::test]
async fn reconciliation_names_a_payment_whose_postings_disagree_with_its_state() {
    let app = TestApp::manual().await;
    let w = app.worker();
    let order = Uuid::now_v7();
    app.handle(&request(
        order,
        Uuid::now_v7(),
        "tok_visa",
        &[(Uuid::now_v7(), dec("2.00"))],
    ))
    .await;
    app.drain(&w).await;
    // Say it was captured without a capture posting (as a bug in the code would).
    sqlx::query("UPDATE payments SET status = 'captured' WHERE order_id = $1")
        .bind(order)
        .execute(app.db())
        .await
        .unwrap();
    let rec = payment::reconcile::run(app.db()).await.unwrap();
    assert_eq!(rec.mismatches.len(), 1, "{rec:?}");
    assert_eq!(rec.mismatches[0].order_id, order);
    assert!(rec.mismatches[0].problem.contains("expected"), "{rec:?}");
}
