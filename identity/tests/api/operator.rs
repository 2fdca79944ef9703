//! The operator commands of the identity binary: the only way an ADMIN comes to exist.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::Value;
use shared::auth::Role;

use crate::helpers::{assert_error, TestApp};

fn args(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn create_admin_makes_a_verified_admin_who_can_use_admin_endpoints_and_is_idempotent() {
    let app = TestApp::spawn_with(|c| c.require_verified_email = true).await;
    let a = args(&[
        ("username", "root_op"),
        ("email", "Root@Example.com"),
        ("password", "Adm1n-pass!"),
    ]);
    identity::cli::create_user(&app.state.config, &a, Some(Role::Admin))
        .await
        .unwrap();
    let session = app.login_ok("root_op", "Adm1n-pass!").await;
    let me: Value = app
        .get_auth("/api/v1/users/me", &session.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["role"], "ADMIN");
    assert_eq!(me["email"], "root@example.com");
    assert_eq!(
        me["email_verified"], true,
        "operators create verified admins"
    );
    assert_eq!(
        app.get_auth("/api/v1/users", &session.access)
            .await
            .status(),
        StatusCode::OK
    );

    // The seed runs it again: with --exists-ok that is fine, without it is an error.
    let mut again = a.clone();
    assert!(
        identity::cli::create_user(&app.state.config, &again, Some(Role::Admin))
            .await
            .is_err()
    );
    again.insert("exists-ok".into(), "true".into());
    identity::cli::create_user(&app.state.config, &again, Some(Role::Admin))
        .await
        .unwrap();
}

#[tokio::test]
async fn create_user_validates_like_registration() {
    let app = TestApp::spawn().await;
    for bad in [
        args(&[
            ("role", "KING"),
            ("username", "abc"),
            ("email", "a@b.co"),
            ("password", "Adm1n-pass!"),
        ]),
        args(&[
            ("role", "SELLER"),
            ("username", "a b"),
            ("email", "a@b.co"),
            ("password", "Adm1n-pass!"),
        ]),
        args(&[
            ("role", "SELLER"),
            ("username", "abc"),
            ("email", "nope"),
            ("password", "Adm1n-pass!"),
        ]),
        args(&[
            ("role", "SELLER"),
            ("username", "abc"),
            ("email", "a@b.co"),
            ("password", "weak"),
        ]),
    ] {
        assert!(
            identity::cli::create_user(&app.state.config, &bad, None)
                .await
                .is_err(),
            "{bad:?}"
        );
    }
    assert_error(
        app.login("abc", "Adm1n-pass!").await,
        StatusCode::UNAUTHORIZED,
        "INVALID_CREDENTIALS",
    )
    .await;
}

#[test]
fn gen_keys_writes_a_pair_that_signs_and_verifies() {
    let dir = std::env::temp_dir().join(format!("koupang-keys-{}", uuid::Uuid::now_v7().simple()));
    identity::cli::gen_keys(dir.to_str().unwrap()).unwrap();
    let private = std::fs::read_to_string(dir.join("identity-private.pem")).unwrap();
    let public = std::fs::read_to_string(dir.join("identity-public.pem")).unwrap();
    let keys = shared::auth::Ed25519KeyPair::from_private_pem(&private).unwrap();
    assert_eq!(
        shared::auth::raw_public_key_from_pem(&public).unwrap(),
        keys.public_raw
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("identity-private.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the private key is readable by its owner only"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
