//! Operator commands of the identity binary (no HTTP involved):
//!
//! - `identity create-admin --username U --email E` — the only way to make an ADMIN; the password
//!   comes from `--password` or `KOUPANG_ADMIN_PASSWORD`.
//! - `identity create-user --role BUYER|SELLER|ADMIN --username U --email E --password P [--verified] [--exists-ok]`
//!   — used by the seed script.
//! - `identity gen-keys --out DIR` — a fresh Ed25519 key pair for signing access tokens.

use std::path::Path;

use clap::{Args, Parser, Subcommand};
use shared::auth::{Ed25519KeyPair, Role};

use crate::config::IdentityConfig;
use crate::password::PasswordHasher;
use crate::users::domain::{Email, Password, Username};
use crate::users::repository::{self as repo, NewUser};

/// The identity binary's command line; unknown commands and flags are errors.
#[derive(Debug, Parser)]
#[command(
    name = "identity",
    about = "Koupang identity service and its operator commands"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default when no command is given).
    Serve,
    /// Create a verified ADMIN account: the only way an admin comes to exist.
    CreateAdmin(UserArgs),
    /// Create an account of any role (used by the seed script).
    CreateUser {
        /// BUYER, SELLER or ADMIN.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[command(flatten)]
        user: UserArgs,
    },
    /// Write a fresh Ed25519 key pair for signing access tokens.
    GenKeys {
        /// Folder for identity-private.pem (mode 0600) and identity-public.pem.
        #[arg(long, default_value = ".")]
        out: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct UserArgs {
    #[arg(long)]
    pub username: String,
    #[arg(long)]
    pub email: String,
    /// The password; read from KOUPANG_ADMIN_PASSWORD when not given.
    #[arg(long, env = "KOUPANG_ADMIN_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// Mark the email verified (always so for admins).
    #[arg(long)]
    pub verified: bool,
    /// An account with this username or email already existing is not an error (for re-seeding).
    #[arg(long)]
    pub exists_ok: bool,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| "must be BUYER, SELLER or ADMIN".to_owned())
}

impl Cli {
    /// The command to run; `identity` alone serves.
    pub fn command(self) -> Command {
        self.command.unwrap_or(Command::Serve)
    }
}

pub fn gen_keys(out: &str) -> anyhow::Result<()> {
    let keys = Ed25519KeyPair::generate()?;
    std::fs::create_dir_all(out)?;
    let private = Path::new(out).join("identity-private.pem");
    let public = Path::new(out).join("identity-public.pem");
    write_private(&private, keys.private_pem().as_bytes())?;
    std::fs::write(&public, keys.public_pem())?;
    println!("wrote {} and {}", private.display(), public.display());
    Ok(())
}

/// Write the private key so that it is never readable by others, not even for an instant: the
/// file is created with mode 0600 (an existing file is truncated and its mode tightened first).
fn write_private(path: &Path, pem: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    options.open(path)?.write_all(pem)?;
    Ok(())
}

pub async fn create_user(
    config: &IdentityConfig,
    args: &UserArgs,
    role: Role,
) -> anyhow::Result<()> {
    let username =
        Username::parse(&args.username).map_err(|m| anyhow::anyhow!("--username {m}"))?;
    let email = Email::parse(&args.email).map_err(|m| anyhow::anyhow!("--email {m}"))?;
    let password = Password::parse(&args.password).map_err(|m| anyhow::anyhow!("password {m}"))?;
    // Operators create verified accounts unless they say otherwise for non-admins.
    let verified = role == Role::Admin || args.verified;

    let pool = shared::db::connect(&config.common).await?;
    shared::db::migrate(&pool, &crate::MIGRATOR).await?;
    let hasher = PasswordHasher::new(
        config.argon2_memory_kib,
        config.argon2_iterations,
        config.argon2_parallelism,
        1,
        0,
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
            if args.exists_ok
                && (shared::db::is_unique_violation(&e, "users_username_key")
                    || shared::db::is_unique_violation(&e, "users_email_key")) =>
        {
            println!("exists {} {}", role.as_str(), username.as_str());
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!("could not create the user: {e}")),
    }
}
