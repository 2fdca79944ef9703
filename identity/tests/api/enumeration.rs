//! What the mail-sending endpoints and the login throttle reveal about accounts through timing
//! and counters (issue 12, item 8).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, TestApp, PASSWORD};
use crate::mailer::{app_mailing_to, app_mailing_to_with};
use crate::smtp_sink::SmtpSink;

/// Register `name` through `app` (mailing to `sink`) and verify the address with the mailed token.
async fn verified_user(app: &TestApp, sink: &SmtpSink, name: &str) {
    let before = sink.messages().len();
    app.user(name, "BUYER").await;
    let token = sink.wait_for(before + 1).await[before].token().unwrap();
    let resp = app
        .post("/api/v1/users/verify-email", json!({ "token": token }))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

/// POST `{email}` to `path`, failing if the answer takes longer than 10 s.
async fn ask(app: &TestApp, path: &str, email: &str) -> reqwest::Response {
    tokio::time::timeout(
        Duration::from_secs(10),
        app.post(path, json!({ "email": email })),
    )
    .await
    .unwrap_or_else(|_| panic!("{path} for {email} waited for the mail to be delivered"))
}

#[tokio::test]
async fn forgot_password_answers_a_known_address_before_its_mail_is_delivered() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink).await;
    verified_user(&app, &sink, "ada").await;
    sink.hold();
    let resp = ask(&app, "/api/v1/users/forgot-password", "ada@example.com").await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(
        sink.messages().len(),
        1,
        "the reset mail has not landed yet"
    );
    assert_eq!(app.state.background.running(), 1, "it is still on its way");
    sink.release();
    let mails = sink.wait_for(2).await;
    assert!(mails[1]
        .data
        .contains("Subject: Reset your Koupang password"));
    assert!(mails[1].token().is_some());
    app.settled().await;
}

#[tokio::test]
async fn resend_verification_answers_an_unverified_address_before_its_mail_is_delivered() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink).await;
    app.user("bea", "BUYER").await;
    sink.wait_for(1).await;
    sink.hold();
    let resp = ask(&app, "/api/v1/users/resend-verification", "bea@example.com").await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(sink.messages().len(), 1, "the new link has not landed yet");
    assert_eq!(app.state.background.running(), 1, "it is still on its way");
    sink.release();
    let mails = sink.wait_for(2).await;
    assert!(mails[1]
        .data
        .contains("Subject: Verify your Koupang email address"));
    app.settled().await;
}

#[tokio::test]
async fn locking_out_a_username_says_nothing_about_the_account_behind_an_email() {
    let app = TestApp::spawn_with(|c| c.login_max_failures_per_account = 3).await;
    app.user("eve", "BUYER").await;
    for _ in 0..3 {
        assert_error(
            app.login("eve", "Wr0ng-password").await,
            StatusCode::UNAUTHORIZED,
            "INVALID_CREDENTIALS",
        )
        .await;
    }
    assert_error(
        app.login("EVE", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
    )
    .await;
    // The account's email answers like any other name nobody has failed with: a wrong password
    // is a plain 401, not the 429 that would tie it to the locked username.
    assert_error(
        app.login("eve@example.com", "Wr0ng-password").await,
        StatusCode::UNAUTHORIZED,
        "INVALID_CREDENTIALS",
    )
    .await;
    app.login_ok("eve@example.com", PASSWORD).await;
}

#[tokio::test]
async fn a_password_reset_lifts_the_lockout_of_both_the_username_and_the_email() {
    let app = TestApp::spawn_with(|c| c.login_max_failures_per_account = 2).await;
    app.user("fay", "BUYER").await;
    app.verify_email("fay@example.com").await;
    for name in ["fay", "fay@example.com"] {
        for _ in 0..2 {
            app.login(name, "Wr0ng-password").await;
        }
        assert_error(
            app.login(name, PASSWORD).await,
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
        )
        .await;
    }
    app.post(
        "/api/v1/users/forgot-password",
        json!({"email": "fay@example.com"}),
    )
    .await;
    app.settled().await;
    let token = app.token_from_latest_mail("fay@example.com");
    let resp = app
        .post(
            "/api/v1/users/reset-password",
            json!({"token": token, "new_password": "R3set-password!"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    app.login_ok("fay", "R3set-password!").await;
    app.login_ok("fay@example.com", "R3set-password!").await;
}

#[tokio::test]
async fn stopping_the_service_waits_for_a_reset_mail_still_on_its_way() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to_with(&sink, |c| c.common.shutdown_grace_secs = 30).await;
    verified_user(&app, &sink, "gil").await;
    sink.hold();
    let resp = ask(&app, "/api/v1/users/forgot-password", "gil@example.com").await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let mut run = app.run.lock().unwrap().take().unwrap();
    app.stop();
    // The mail is held at the relay, so the service must not have finished stopping.
    assert!(
        tokio::time::timeout(Duration::from_secs(2), &mut run)
            .await
            .is_err(),
        "the service stopped with the reset mail undelivered"
    );
    assert_eq!(sink.messages().len(), 1);
    sink.release();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the service stops once the mail is delivered")
        .unwrap()
        .unwrap();
    let mails = sink.messages();
    assert_eq!(
        mails.len(),
        2,
        "the reset mail landed before the service stopped"
    );
    assert!(mails[1]
        .data
        .contains("Subject: Reset your Koupang password"));
}
