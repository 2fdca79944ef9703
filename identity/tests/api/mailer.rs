//! The SMTP mailer against a local SMTP sink the test starts itself.

use identity::config::MailerKind;
use reqwest::StatusCode;
use serde_json::json;
use shared::config::Secret;

use crate::helpers::{TestApp, PASSWORD};
use crate::smtp_sink::SmtpSink;

/// An identity that mails through `sink`, with `customise` applied on top.
pub async fn app_mailing_to_with(
    sink: &SmtpSink,
    customise: impl FnOnce(&mut identity::IdentityConfig),
) -> TestApp {
    let port = sink.addr.port();
    TestApp::spawn_with(move |c| {
        c.mailer = MailerKind::Smtp;
        c.smtp_host = "127.0.0.1".into();
        c.smtp_port = port;
        c.smtp_username = Some("identity".into());
        c.smtp_password = Some(Secret::new("relay-s3cret"));
        c.mail_from = "Koupang <no-reply@koupang.test>".into();
        customise(c);
    })
    .await
}

pub async fn app_mailing_to(sink: &SmtpSink) -> TestApp {
    app_mailing_to_with(sink, |_| {}).await
}

#[tokio::test]
async fn registration_mails_the_verification_token_through_smtp_and_the_token_verifies() {
    let sink = SmtpSink::start().await;
    let app = app_mailing_to(&sink).await;
    let resp = app.register("sol", "BUYER").await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let mails = sink.wait_for(1).await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(
        mail.auth,
        Some(("identity".to_owned(), "relay-s3cret".to_owned())),
        "the relay credentials are used"
    );
    assert_eq!(mail.from, "<no-reply@koupang.test>");
    assert_eq!(mail.to, vec!["<sol@example.com>".to_owned()]);
    assert!(
        mail.data
            .contains("Subject: Verify your Koupang email address"),
        "{}",
        mail.data
    );
    let token = mail.token().expect("a token in the mail");
    let resp = app
        .post("/api/v1/users/verify-email", json!({ "token": token }))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let me: serde_json::Value = app
        .get_auth(
            "/api/v1/users/me",
            &app.login_ok("sol", PASSWORD).await.access,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email_verified"], true);
}
