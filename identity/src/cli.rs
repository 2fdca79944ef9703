//! Operator commands of the identity binary (no HTTP involved):
//!
//! - `identity create-admin --username U --email E` — the only way to make an ADMIN; the password
//!   comes from `--password` or `KOUPANG_ADMIN_PASSWORD`.
//! - `identity create-user --role BUYER|SELLER|ADMIN --username U --email E --password P [--verified] [--exists-ok]`
//!   — used by the seed script.
//! - `identity gen-keys --out DIR` — a fresh Ed25519 key pair for signing access tokens.

use std::collections::HashMap;

use shared::auth::{Ed25519KeyPair, Role};

use crate::config::IdentityConfig;
use crate::password::PasswordHasher;
use crate::users::domain::{Email, Password, Username};
use crate::users::repository::{self as repo, NewUser};

pub enum Command {
    Serve,
    CreateUser {
        args: HashMap<String, String>,
        role: Option<Role>,
    },
    GenKeys {
        out: String,
    },
}

pub fn parse(argv: &[String]) -> anyhow::Result<Command> {
    let Some(cmd) = argv.first() else {
        return Ok(Command::Serve);
    };
    let mut args = HashMap::new();
    let mut it = argv[1..].iter();
    while let Some(a) = it.next() {
        let Some(name) = a.strip_prefix("--") else {
            anyhow::bail!("unexpected argument '{a}'");
        };
        if matches!(name, "verified" | "exists-ok") {
            args.insert(name.to_owned(), "true".to_owned());
        } else {
            let v = it
                .next()
                .ok_or_else(|| anyhow::anyhow!("--{name} needs a value"))?;
            args.insert(name.to_owned(), v.clone());
        }
    }
    match cmd.as_str() {
        "serve" => Ok(Command::Serve),
        "create-admin" => Ok(Command::CreateUser {
            args,
            role: Some(Role::Admin),
        }),
        "create-user" => Ok(Command::CreateUser { args, role: None }),
        "gen-keys" => Ok(Command::GenKeys {
            out: args.get("out").cloned().unwrap_or_else(|| ".".into()),
        }),
        other => {
            anyhow::bail!("unknown command '{other}' (serve, create-admin, create-user, gen-keys)")
        }
    }
}

pub fn gen_keys(out: &str) -> anyhow::Result<()> {
    let keys = Ed25519KeyPair::generate()?;
    std::fs::create_dir_all(out)?;
    let private = std::path::Path::new(out).join("identity-private.pem");
    let public = std::path::Path::new(out).join("identity-public.pem");
    std::fs::write(&private, keys.private_pem())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::write(&public, keys.public_pem())?;
    println!("wrote {} and {}", private.display(), public.display());
    Ok(())
}

pub async fn create_user(
    config: &IdentityConfig,
    args: &HashMap<String, String>,
    role: Option<Role>,
) -> anyhow::Result<()> {
    let get = |k: &str| args.get(k).map(String::as_str);
    let role = match role {
        Some(r) => r,
        None => Role::parse(get("role").unwrap_or(""))
            .ok_or_else(|| anyhow::anyhow!("--role must be BUYER, SELLER or ADMIN"))?,
    };
    let username = Username::parse(get("username").unwrap_or(""))
        .map_err(|m| anyhow::anyhow!("--username {m}"))?;
    let email =
        Email::parse(get("email").unwrap_or("")).map_err(|m| anyhow::anyhow!("--email {m}"))?;
    let password_raw = get("password")
        .map(str::to_owned)
        .or_else(|| std::env::var("KOUPANG_ADMIN_PASSWORD").ok())
        .ok_or_else(|| anyhow::anyhow!("--password or KOUPANG_ADMIN_PASSWORD is required"))?;
    let password = Password::parse(&password_raw).map_err(|m| anyhow::anyhow!("password {m}"))?;
    // Operators create verified accounts unless they say otherwise for non-admins.
    let verified = role == Role::Admin || get("verified").is_some();

    let pool = shared::db::connect(&config.common).await?;
    shared::db::migrate(&pool, &crate::MIGRATOR).await?;
    let hasher = PasswordHasher::new(
        config.argon2_memory_kib,
        config.argon2_iterations,
        config.argon2_parallelism,
    )
    .await?;
    let hash = hasher.hash(password.expose()).await?;
    let result = repo::insert(
        &pool,
        &NewUser {
            id: shared::id::new_id(),
            username: username.as_str(),
            email: email.as_str(),
            phone: None,
            password_hash: &hash,
            role: role.as_str(),
            email_verified: verified,
        },
    )
    .await;
    match result {
        Ok(user) => {
            println!("created {} {} ({})", role.as_str(), user.username, user.id);
            Ok(())
        }
        Err(e)
            if get("exists-ok").is_some()
                && (shared::db::is_unique_violation(&e, "users_username_key")
                    || shared::db::is_unique_violation(&e, "users_email_key")) =>
        {
            println!("exists {} {}", role.as_str(), username.as_str());
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!("could not create the user: {e}")),
    }
}
