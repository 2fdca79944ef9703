//! The operator commands of the identity binary: the only way an ADMIN comes to exist.

use clap::Parser;
use identity::cli::{Cli, Command, UserArgs};
use reqwest::StatusCode;
use serde_json::Value;
use shared::auth::Role;

use crate::helpers::{assert_error, TestApp};

/// The command line as an operator types it, parsed by the binary's own parser.
fn parse(argv: &[&str]) -> Result<Command, clap::Error> {
    Cli::try_parse_from(std::iter::once("identity").chain(argv.iter().copied())).map(Cli::command)
}

/// The account a `create-admin`/`create-user` command line asks for.
fn user_command(argv: &[&str]) -> (UserArgs, Role) {
    match parse(argv).unwrap() {
        Command::CreateAdmin(user) => (user, Role::Admin),
        Command::CreateUser { role, user } => (user, role),
        other => panic!("not a user command: {other:?}"),
    }
}

#[tokio::test]
async fn create_admin_makes_a_verified_admin_who_can_use_admin_endpoints_and_is_idempotent() {
    let app = TestApp::spawn_with(|c| c.require_verified_email = true).await;
    let argv = [
        "create-admin",
        "--username",
        "root_op",
        "--email",
        "Root@Example.com",
        "--password",
        "Adm1n-pass!",
    ];
    let (a, role) = user_command(&argv);
    assert_eq!(role, Role::Admin);
    identity::cli::create_user(&app.state.config, &a, role)
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
    assert!(
        identity::cli::create_user(&app.state.config, &a, Role::Admin)
            .await
            .is_err()
    );
    let (again, _) = user_command(&[&argv[..], &["--exists-ok"]].concat());
    assert!(again.exists_ok);
    identity::cli::create_user(&app.state.config, &again, Role::Admin)
        .await
        .unwrap();
}

#[test]
fn the_command_line_refuses_unknown_commands_flags_and_roles_and_missing_values() {
    for argv in [
        &["make-admin", "--username", "abc"][..],
        &[
            "create-admin",
            "--username",
            "abc",
            "--email",
            "a@b.co",
            "--password",
            "Adm1n-pass!",
            "--force",
        ],
        &[
            "create-user",
            "--role",
            "KING",
            "--username",
            "abc",
            "--email",
            "a@b.co",
            "--password",
            "Adm1n-pass!",
        ],
        &[
            "create-user",
            "--username",
            "abc",
            "--email",
            "a@b.co",
            "--password",
            "Adm1n-pass!",
        ],
        &["create-admin", "--username", "--email", "a@b.co"],
        &["gen-keys", "--out"],
    ] {
        assert!(parse(argv).is_err(), "{argv:?} was accepted");
    }
    assert!(matches!(parse(&[]).unwrap(), Command::Serve));
    match parse(&["gen-keys"]).unwrap() {
        Command::GenKeys { out } => assert_eq!(out, "."),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn create_user_validates_like_registration() {
    let app = TestApp::spawn().await;
    for bad in [
        [
            "--username",
            "a b",
            "--email",
            "a@b.co",
            "--password",
            "Adm1n-pass!",
        ],
        [
            "--username",
            "abc",
            "--email",
            "nope",
            "--password",
            "Adm1n-pass!",
        ],
        [
            "--username",
            "abc",
            "--email",
            "a@b.co",
            "--password",
            "weak",
        ],
    ] {
        let (user, role) = user_command(&[&["create-user", "--role", "SELLER"][..], &bad].concat());
        assert_eq!(role, Role::Seller);
        assert!(
            identity::cli::create_user(&app.state.config, &user, role)
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
