use futures::future::join_all;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, TestApp, PASSWORD};

#[tokio::test]
async fn login_by_username_or_email_in_any_case_returns_a_token_pair() {
    let app = TestApp::spawn().await;
    app.user("heidi", "BUYER").await;
    for name in ["heidi", "HEIDI", "heidi@example.com", "Heidi@Example.com"] {
        let resp = app.login(name, PASSWORD).await;
        assert_eq!(resp.status(), StatusCode::OK, "{name}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 900);
        assert!(body["access_token"].as_str().unwrap().split('.').count() == 3);
        assert!(body["refresh_token"].as_str().unwrap().len() >= 43);
    }
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_401() {
    let app = TestApp::spawn().await;
    app.user("ivan", "BUYER").await;
    let wrong = assert_error(
        app.login("ivan", "Wr0ng-password").await,
        StatusCode::UNAUTHORIZED,
        "INVALID_CREDENTIALS",
    )
    .await;
    let unknown = assert_error(
        app.login("nobody", "Wr0ng-password").await,
        StatusCode::UNAUTHORIZED,
        "INVALID_CREDENTIALS",
    )
    .await;
    assert_eq!(wrong["error"]["message"], unknown["error"]["message"]);
}

#[tokio::test]
async fn a_login_name_with_a_nul_is_a_wrong_name_not_a_server_error() {
    let app = TestApp::spawn().await;
    app.user("nadia", "BUYER").await;
    assert_error(
        app.login("nadia\u{0}", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_CREDENTIALS",
    )
    .await;
}

#[tokio::test]
async fn unknown_users_cost_a_password_verification_like_known_ones() {
    let app = TestApp::spawn().await;
    app.user("ivy", "BUYER").await;
    let before = app.state.hasher.verifications();
    app.login("ghost", "Wr0ng-password!").await;
    assert_eq!(
        app.state.hasher.verifications(),
        before + 1,
        "unknown user: one argon2 verification"
    );
    app.login("ivy", "Wr0ng-password!").await;
    assert_eq!(
        app.state.hasher.verifications(),
        before + 2,
        "known user: one argon2 verification"
    );
}

#[tokio::test]
async fn repeated_failures_lock_the_account_with_429_and_retry_after() {
    let app = TestApp::spawn_with(|c| c.login_max_failures_per_account = 3).await;
    app.user("judy", "BUYER").await;
    for _ in 0..3 {
        assert_error(
            app.login("judy", "Wr0ng-password").await,
            StatusCode::UNAUTHORIZED,
            "INVALID_CREDENTIALS",
        )
        .await;
    }
    // Throttled by the name as typed, in any case, even with the right password (the email is
    // another name: see enumeration.rs).
    for name in ["judy", "JUDY"] {
        let resp = app.login(name, PASSWORD).await;
        let retry: u64 = resp.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=900).contains(&retry), "retry-after {retry}");
        assert_error(resp, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    }
}

#[tokio::test]
async fn a_burst_of_parallel_guesses_cannot_exceed_the_limit() {
    let app = TestApp::spawn_with(|c| c.login_max_failures_per_account = 4).await;
    app.user("kate", "BUYER").await;
    let guesses =
        (0..20).map(|i| app.login("kate", if i % 2 == 0 { "Wr0ng-a!" } else { "Wr0ng-b!" }));
    let statuses: Vec<StatusCode> = join_all(guesses).await.iter().map(|r| r.status()).collect();
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!(
        checked, 4,
        "only the allowed number of passwords were tried: {statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count(),
        16
    );
}

#[tokio::test]
async fn failures_from_one_address_across_accounts_are_throttled() {
    let app = TestApp::spawn_with(|c| c.login_max_failures_per_ip = 4).await;
    let login_from = |user: String, ip: &'static str| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/api/v1/users/login"))
                .header("x-forwarded-for", ip)
                .json(&json!({"username": user, "password": "Wr0ng-password"}))
                .send()
                .await
                .unwrap()
        }
    };
    for i in 0..4 {
        assert_eq!(
            login_from(format!("user{i}"), "203.0.113.7").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_error(
        login_from("user9".into(), "203.0.113.7").await,
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
    )
    .await;
    assert_eq!(
        login_from("user9".into(), "198.51.100.1").await.status(),
        StatusCode::UNAUTHORIZED,
        "another address is not throttled"
    );
}

#[tokio::test]
async fn a_successful_login_clears_the_accounts_failures() {
    let app = TestApp::spawn_with(|c| c.login_max_failures_per_account = 3).await;
    app.user("leo", "BUYER").await;
    for _ in 0..2 {
        app.login("leo", "Wr0ng-password").await;
    }
    app.login_ok("leo", PASSWORD).await;
    for _ in 0..2 {
        assert_eq!(
            app.login("leo", "Wr0ng-password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    app.login_ok("leo", PASSWORD).await;
}

#[tokio::test]
async fn unverified_users_cannot_log_in_when_verification_is_required() {
    let app = TestApp::spawn_with(|c| c.require_verified_email = true).await;
    app.user("mia", "BUYER").await;
    assert_error(
        app.login("mia", PASSWORD).await,
        StatusCode::FORBIDDEN,
        "EMAIL_NOT_VERIFIED",
    )
    .await;
    let token = app.token_from_latest_mail("mia@example.com");
    app.post("/api/v1/users/verify-email", json!({"token": token}))
        .await;
    app.login_ok("mia", PASSWORD).await;
}

#[tokio::test]
async fn refresh_rotates_the_pair_and_reuse_revokes_the_whole_family() {
    let app = TestApp::spawn().await;
    let (_, first) = app.signed_in("nina", "BUYER").await;
    let resp = app.refresh(&first.refresh).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let second: Value = resp.json().await.unwrap();
    let second_refresh = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first.refresh);
    assert_eq!(
        app.get_auth("/api/v1/users/me", second["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );

    // The first token comes back: someone copied it. The family dies.
    let reuse = app.refresh(&first.refresh).await;
    assert_error(reuse, StatusCode::UNAUTHORIZED, "REFRESH_TOKEN_REUSED").await;
    let successor = app.refresh(&second_refresh).await;
    assert_error(successor, StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN").await;

    // Other sessions of the same user are untouched.
    let other = app.login_ok("nina", PASSWORD).await;
    let resp = app.refresh(&other.refresh).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

/// Both refreshes are sent at once (two tasks released by one barrier, on a multi-threaded
/// runtime), twenty times, each time with a fresh session: every round exactly one gets a new
/// pair and the other is told the token was reused, never a 5xx or a second pair.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_refreshes_with_one_token_never_both_succeed() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    app.user("oscar", "BUYER").await;
    for round in 0..20 {
        let s = app.login_ok("oscar", PASSWORD).await;
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let racers = (0..2).map(|_| {
            let (app, barrier, token) = (app.clone(), barrier.clone(), s.refresh.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let resp = app.refresh(&token).await;
                let status = resp.status();
                let body: Value = resp.json().await.unwrap();
                (status, body)
            })
        });
        let mut answers: Vec<(StatusCode, Value)> = join_all(racers)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        answers.sort_by_key(|(status, _)| *status);
        let [(won, pair), (lost, error)] = &answers[..] else {
            unreachable!()
        };
        assert_eq!(*won, StatusCode::OK, "round {round}: {answers:?}");
        assert!(pair["refresh_token"].is_string(), "round {round}: {pair}");
        assert_eq!(
            *lost,
            StatusCode::UNAUTHORIZED,
            "round {round}: {answers:?}"
        );
        assert_eq!(
            error["error"]["code"], "REFRESH_TOKEN_REUSED",
            "round {round}: {answers:?}"
        );
    }
}

#[tokio::test]
async fn garbage_and_expired_refresh_tokens_are_401() {
    let app = TestApp::spawn().await;
    let (_, s) = app.signed_in("pam", "BUYER").await;
    assert_error(
        app.refresh("not-a-token").await,
        StatusCode::UNAUTHORIZED,
        "INVALID_REFRESH_TOKEN",
    )
    .await;
    sqlx::query("UPDATE refresh_tokens SET expires_at = now() - interval '1 second'")
        .execute(&app.state.db)
        .await
        .unwrap();
    assert_error(
        app.refresh(&s.refresh).await,
        StatusCode::UNAUTHORIZED,
        "REFRESH_TOKEN_EXPIRED",
    )
    .await;
}

#[tokio::test]
async fn logout_revokes_the_session_and_is_idempotent() {
    let app = TestApp::spawn().await;
    let (_, s) = app.signed_in("quinn", "BUYER").await;
    let resp = app
        .post("/api/v1/users/logout", json!({"refresh_token": s.refresh}))
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.refresh(&s.refresh).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_REFRESH_TOKEN",
    )
    .await;
    let again = app
        .post("/api/v1/users/logout", json!({"refresh_token": s.refresh}))
        .await;
    assert_eq!(again.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn changing_the_password_revokes_every_session() {
    let app = TestApp::spawn().await;
    let (_, s1) = app.signed_in("rita", "BUYER").await;
    let s2 = app.login_ok("rita", PASSWORD).await;
    let new_password = "N3w-password!";
    let resp = app
        .post_auth(
            "/api/v1/users/me/password",
            &s1.access,
            json!({"current_password": PASSWORD, "new_password": new_password}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    for s in [&s1, &s2] {
        assert_error(
            app.refresh(&s.refresh).await,
            StatusCode::UNAUTHORIZED,
            "INVALID_REFRESH_TOKEN",
        )
        .await;
    }
    assert_eq!(
        app.login("rita", PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.login_ok("rita", new_password).await;
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_a_strong_new_one() {
    let app = TestApp::spawn().await;
    let (_, s) = app.signed_in("sam", "BUYER").await;
    let wrong = app
        .post_auth(
            "/api/v1/users/me/password",
            &s.access,
            json!({"current_password": "Wr0ng-one!", "new_password": "N3w-password!"}),
        )
        .await;
    assert_error(wrong, StatusCode::FORBIDDEN, "CURRENT_PASSWORD_INCORRECT").await;
    let weak = app
        .post_auth(
            "/api/v1/users/me/password",
            &s.access,
            json!({"current_password": PASSWORD, "new_password": "weak"}),
        )
        .await;
    assert_error(weak, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let anonymous = app
        .post(
            "/api/v1/users/me/password",
            json!({"current_password": PASSWORD, "new_password": "N3w-password!"}),
        )
        .await;
    assert_error(anonymous, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    app.login_ok("sam", PASSWORD).await;
}

#[tokio::test]
async fn forgot_and_reset_password_use_a_single_use_mailed_token_and_revoke_sessions() {
    let app = TestApp::spawn().await;
    let (_, s) = app.signed_in("tina", "BUYER").await;
    app.verify_email("tina@example.com").await;
    let resp = app
        .post(
            "/api/v1/users/forgot-password",
            json!({"email": "TINA@example.com"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    app.settled().await;
    let token = app.token_from_latest_mail("tina@example.com");
    let weak = app
        .post(
            "/api/v1/users/reset-password",
            json!({"token": token, "new_password": "weak"}),
        )
        .await;
    assert_error(weak, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let resp = app
        .post(
            "/api/v1/users/reset-password",
            json!({"token": token, "new_password": "R3set-password!"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.refresh(&s.refresh).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_REFRESH_TOKEN",
    )
    .await;
    app.login_ok("tina", "R3set-password!").await;
    let again = app
        .post(
            "/api/v1/users/reset-password",
            json!({"token": token, "new_password": "An0ther-one!"}),
        )
        .await;
    assert_error(again, StatusCode::BAD_REQUEST, "INVALID_OR_EXPIRED_TOKEN").await;
}

#[tokio::test]
async fn forgot_password_reveals_nothing_about_unknown_addresses() {
    let app = TestApp::spawn().await;
    let resp = app
        .post(
            "/api/v1/users/forgot-password",
            json!({"email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    app.settled().await;
    assert!(app.mails_to("nobody@example.com").is_empty());
    let bad = app
        .post(
            "/api/v1/users/forgot-password",
            json!({"email": "not an email"}),
        )
        .await;
    assert_error(bad, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
}

#[tokio::test]
async fn forgot_password_mails_only_a_verified_address_and_answers_the_same() {
    let app = TestApp::spawn().await;
    app.user("vic", "BUYER").await;
    let verification_mails = app.mails_to("vic@example.com").len();
    let forgot = || async {
        let resp = app
            .post(
                "/api/v1/users/forgot-password",
                json!({"email": "vic@example.com"}),
            )
            .await;
        app.settled().await;
        resp
    };
    let unverified = forgot().await;
    assert_eq!(unverified.status(), StatusCode::ACCEPTED);
    let unverified: Value = unverified.json().await.unwrap();
    assert_eq!(
        app.mails_to("vic@example.com").len(),
        verification_mails,
        "no reset link for an unproven address"
    );
    app.verify_email("vic@example.com").await;
    let verified = forgot().await;
    assert_eq!(verified.status(), StatusCode::ACCEPTED);
    assert_eq!(verified.json::<Value>().await.unwrap(), unverified);
    let mails = app.mails_to("vic@example.com");
    assert_eq!(mails.len(), verification_mails + 1);
    assert!(mails
        .last()
        .unwrap()
        .contains("Reset your Koupang password"));
}

#[tokio::test]
async fn an_earlier_reset_link_stays_valid_after_a_newer_one_until_either_is_used() {
    let app = TestApp::spawn().await;
    app.user("uma", "BUYER").await;
    app.verify_email("uma@example.com").await;
    let forgot = || async {
        app.post(
            "/api/v1/users/forgot-password",
            json!({"email": "uma@example.com"}),
        )
        .await;
        app.settled().await;
    };
    forgot().await;
    let older = app.token_from_latest_mail("uma@example.com");
    forgot().await;
    let newer = app.token_from_latest_mail("uma@example.com");
    assert_ne!(older, newer);
    let resp = app
        .post(
            "/api/v1/users/reset-password",
            json!({"token": older, "new_password": "R3set-password!"}),
        )
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::NO_CONTENT,
        "the older link still works"
    );
    let resp = app
        .post(
            "/api/v1/users/reset-password",
            json!({"token": newer, "new_password": "An0ther-reset!"}),
        )
        .await;
    assert_error(resp, StatusCode::BAD_REQUEST, "INVALID_OR_EXPIRED_TOKEN").await;
    app.login_ok("uma", "R3set-password!").await;
}

#[tokio::test]
async fn an_expired_reset_link_fails() {
    let app = TestApp::spawn().await;
    app.user("una", "BUYER").await;
    app.verify_email("una@example.com").await;
    app.post(
        "/api/v1/users/forgot-password",
        json!({"email": "una@example.com"}),
    )
    .await;
    app.settled().await;
    let token = app.token_from_latest_mail("una@example.com");
    sqlx::query("UPDATE user_tokens SET expires_at = now() - interval '1 second' WHERE purpose = 'reset_password'")
        .execute(&app.state.db)
        .await
        .unwrap();
    let resp = app
        .post(
            "/api/v1/users/reset-password",
            json!({"token": token, "new_password": "R3set-password!"}),
        )
        .await;
    assert_error(resp, StatusCode::BAD_REQUEST, "INVALID_OR_EXPIRED_TOKEN").await;
    app.login_ok("una", PASSWORD).await;
}

/// POST `path` `{email}` as the client at `ip` (the test app trusts one proxy hop).
async fn mail_request(app: &TestApp, path: &str, email: &str, ip: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("x-forwarded-for", ip)
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap()
}

async fn assert_throttled(resp: reqwest::Response) {
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1, "Retry-After {retry_after}");
    assert_error(resp, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
}

#[tokio::test]
async fn mail_requests_are_throttled_per_address_alike_for_known_and_unknown_addresses() {
    let app = TestApp::spawn_with(|c| {
        c.mail_requests_per_address = 2;
        c.mail_requests_per_client = 100;
    })
    .await;
    app.user("wes", "BUYER").await;
    app.verify_email("wes@example.com").await;
    for path in [
        "/api/v1/users/forgot-password",
        "/api/v1/users/resend-verification",
    ] {
        for (i, email) in ["wes@example.com", "nobody@example.com"].iter().enumerate() {
            for n in 0..2 {
                let ip = format!("198.51.100.{}", 10 * i + n);
                let resp = mail_request(&app, path, email, &ip).await;
                assert_eq!(resp.status(), StatusCode::ACCEPTED, "{path} {email} #{n}");
            }
            // A third request for the address is refused, from whichever client it comes.
            assert_throttled(mail_request(&app, path, email, "198.51.100.99").await).await;
        }
    }
    app.settled().await;
    let resets = app
        .mails_to("wes@example.com")
        .iter()
        .filter(|m| m.contains("Reset your Koupang password"))
        .count();
    assert_eq!(resets, 2, "no mail for the refused request");
}

#[tokio::test]
async fn mail_requests_are_throttled_per_client_across_addresses() {
    let app = TestApp::spawn_with(|c| {
        c.mail_requests_per_address = 100;
        c.mail_requests_per_client = 3;
    })
    .await;
    for path in [
        "/api/v1/users/forgot-password",
        "/api/v1/users/resend-verification",
    ] {
        for i in 0..3 {
            let resp = mail_request(&app, path, &format!("x{i}@example.com"), "203.0.113.5").await;
            assert_eq!(resp.status(), StatusCode::ACCEPTED);
        }
        assert_throttled(mail_request(&app, path, "x9@example.com", "203.0.113.5").await).await;
        let other = mail_request(&app, path, "x9@example.com", "203.0.113.6").await;
        assert_eq!(
            other.status(),
            StatusCode::ACCEPTED,
            "another client is not throttled"
        );
    }
}

#[tokio::test]
async fn resend_verification_answers_alike_for_any_address_and_mails_only_unverified_accounts() {
    let app = TestApp::spawn().await;
    app.user("xia", "BUYER").await;
    app.user("yan", "BUYER").await;
    app.verify_email("yan@example.com").await;
    let before_xia = app.mails_to("xia@example.com").len();
    let before_yan = app.mails_to("yan@example.com").len();
    let mut bodies = Vec::new();
    for email in ["XIA@example.com", "yan@example.com", "nobody@example.com"] {
        let resp = app
            .post(
                "/api/v1/users/resend-verification",
                json!({ "email": email }),
            )
            .await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "{email}");
        bodies.push(resp.json::<Value>().await.unwrap());
    }
    assert!(bodies.iter().all(|b| *b == bodies[0]), "{bodies:?}");
    app.settled().await;
    assert_eq!(app.mails_to("xia@example.com").len(), before_xia + 1);
    assert_eq!(
        app.mails_to("yan@example.com").len(),
        before_yan,
        "already verified"
    );
    assert!(app.mails_to("nobody@example.com").is_empty());
    app.verify_email("xia@example.com").await;
    let bad = app
        .post(
            "/api/v1/users/resend-verification",
            json!({"email": "not an email"}),
        )
        .await;
    assert_error(bad, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
}

/// A verified user with a live reset token: (username, token).
async fn reset_token(app: &TestApp, username: &str) -> String {
    app.user(username, "BUYER").await;
    let email = format!("{username}@example.com");
    app.verify_email(&email).await;
    app.post("/api/v1/users/forgot-password", json!({ "email": email }))
        .await;
    app.settled().await;
    app.token_from_latest_mail(&email)
}

#[tokio::test]
async fn a_reset_with_an_unknown_token_is_refused_without_hashing_the_new_password() {
    let app = TestApp::spawn().await;
    let before = app.state.hasher.hashes();
    let resp = app
        .post(
            "/api/v1/users/reset-password",
            json!({"token": "made-up-token", "new_password": "R3set-password!"}),
        )
        .await;
    assert_error(resp, StatusCode::BAD_REQUEST, "INVALID_OR_EXPIRED_TOKEN").await;
    assert_eq!(app.state.hasher.hashes(), before, "no hash was made");
}

#[tokio::test]
async fn a_full_hashing_queue_refuses_the_overflow_at_once_with_503_and_retry_after() {
    // One worker and a queue of one: two hashes fit, the rest must be refused without waiting.
    let app = TestApp::spawn_with(|c| {
        c.argon2_max_concurrent = 1;
        c.argon2_max_queue = 1;
    })
    .await;
    let token = reset_token(&app, "zed").await;
    // The test holds the only worker, as a long-running hash would.
    let held = app.state.hasher.slot().await.unwrap();
    let mut requests: futures::stream::FuturesUnordered<_> = (0..4)
        .map(|_| {
            let req = app
                .client
                .post(app.url("/api/v1/users/reset-password"))
                .json(&json!({"token": token, "new_password": "R3set-password!"}));
            tokio::spawn(async move { req.send().await.unwrap() })
        })
        .collect();
    // Three answer while the worker is still held: they did not wait for it.
    let deadline = std::time::Duration::from_secs(20);
    for _ in 0..3 {
        let resp = tokio::time::timeout(deadline, requests.next())
            .await
            .expect("refused at once, not queued")
            .unwrap()
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()["retry-after"], "1");
        assert_error(resp, StatusCode::SERVICE_UNAVAILABLE, "SERVER_BUSY").await;
    }
    // The fourth took the queue's one place and is still waiting for the worker.
    drop(held);
    let queued = tokio::time::timeout(deadline, requests.next())
        .await
        .expect("the queued request finishes once the worker is free")
        .unwrap()
        .unwrap();
    assert_eq!(queued.status(), StatusCode::NO_CONTENT);
    app.login_ok("zed", "R3set-password!").await;
}

/// A failed login for `user` through one proxy that received it from the client at `client`; the
/// client itself sent `forged` as its own X-Forwarded-For.
async fn login_via_proxy(app: &TestApp, user: &str, forged: &str, client: &str) -> StatusCode {
    app.client
        .post(app.url("/api/v1/users/login"))
        .header("x-forwarded-for", format!("{forged}, {client}"))
        .json(&json!({"username": user, "password": "Wr0ng-password"}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_forged_leftmost_forwarded_for_entry_does_not_change_the_throttled_address() {
    let app = TestApp::spawn_with(|c| {
        c.login_max_failures_per_ip = 3;
        c.trusted_proxy_hops = 1;
    })
    .await;
    for i in 0..3 {
        let forged = format!("10.9.8.{i}");
        assert_eq!(
            login_via_proxy(&app, &format!("user{i}"), &forged, "203.0.113.7").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_via_proxy(&app, "user9", "10.9.8.77", "203.0.113.7").await,
        StatusCode::TOO_MANY_REQUESTS,
        "a fresh forged entry does not buy a fresh counter"
    );
    // Behind the one proxy, other clients keep their own counters: no global lockout.
    assert_eq!(
        login_via_proxy(&app, "user9", "10.9.8.77", "198.51.100.1").await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn with_no_trusted_proxy_the_forwarded_for_header_is_ignored() {
    let app = TestApp::spawn_with(|c| {
        c.login_max_failures_per_ip = 2;
        c.trusted_proxy_hops = 0;
    })
    .await;
    // Each request claims another client; all come from the test's one socket address.
    for i in 0..2 {
        assert_eq!(
            login_via_proxy(
                &app,
                &format!("user{i}"),
                &format!("10.9.8.{i}"),
                &format!("203.0.113.{i}")
            )
            .await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_via_proxy(&app, "user9", "10.9.8.9", "203.0.113.9").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}
