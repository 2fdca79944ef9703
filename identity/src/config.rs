//! Identity's settings: the common ones plus keys, token lifetimes, mail and login throttling.
//! Environment variables are `IDENTITY_<FIELD>` (see `.env.example`).

use serde::{Deserialize, Serialize};
use shared::config::{CommonConfig, ConfigError, Profile, Secret};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdentityConfig {
    #[serde(flatten)]
    pub common: CommonConfig,
    /// PEM file of the Ed25519 private key that signs access tokens.
    pub jwt_private_key_path: Option<String>,
    /// The same PEM given inline (e.g. from a secret store); wins over the path.
    pub jwt_private_key_pem: Option<Secret>,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    pub verify_email_ttl_secs: u64,
    pub reset_password_ttl_secs: u64,
    /// An account whose email is still unverified this long after registration is expired: its
    /// email and username are free for someone else to register, and it can no longer log in.
    pub unverified_account_ttl_secs: u64,
    /// Whether login is refused until the email is verified.
    pub require_verified_email: bool,
    /// `smtp` (deliver through `smtp_host`), `file` (write each message into `mail_dir`) or
    /// `log` (log it only); anything else is refused when the settings are read. Production
    /// accepts only `smtp`: the others deliver nothing, and production requires verified email.
    pub mailer: MailerKind,
    /// The SMTP relay identity hands its mail to (`mailer = smtp`). Plain SMTP, no TLS: the relay
    /// is ours (a local MTA or a sidecar that does TLS onwards), reached over a trusted network.
    pub smtp_host: String,
    pub smtp_port: u16,
    /// Both or neither: AUTH credentials for the relay.
    pub smtp_username: Option<String>,
    pub smtp_password: Option<Secret>,
    pub mail_dir: String,
    pub mail_from: String,
    /// Base URL of the storefront, for links in mails.
    pub storefront_url: String,
    pub login_max_failures_per_account: u32,
    pub login_max_failures_per_ip: u32,
    pub login_failure_window_secs: u64,
    /// Requests that send mail (forgot-password, resend-verification), per address and per
    /// client address, in a fixed window.
    pub mail_requests_per_address: u32,
    pub mail_requests_per_client: u32,
    pub mail_request_window_secs: u64,
    /// How many proxies of ours stand in front of the service, each appending the address it
    /// got the request from to `X-Forwarded-For`. 0: the socket peer is the client. n: the n-th
    /// entry from the right is (docs/adr/009).
    pub trusted_proxy_hops: u32,
    /// Replaced by `trusted_proxy_hops`; refused when set so an old setting is not silently
    /// dropped (which would put every client behind a proxy into one throttle counter).
    #[serde(default)]
    pub trust_forwarded_for: Option<serde_json::Value>,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Hashing threads (each keeps one `argon2_memory_kib` buffer); 0 means one per core but one.
    pub argon2_max_concurrent: u32,
    /// Hashes that may wait for a worker; past that a request is refused with 503 at once.
    pub argon2_max_queue: u32,
}

/// How mail leaves the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailerKind {
    /// Each message becomes a file in `mail_dir` (local stack and tests).
    File,
    /// Each message is logged, not delivered.
    Log,
    /// Each message is handed to the SMTP relay `smtp_host:smtp_port`.
    Smtp,
}

impl MailerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Log => "log",
            Self::Smtp => "smtp",
        }
    }
}

impl IdentityConfig {
    pub fn defaults(profile: Profile) -> Self {
        let production = profile == Profile::Production;
        let test = profile == Profile::Test;
        Self {
            common: CommonConfig::defaults(profile, 8081, "identity"),
            jwt_private_key_path: None,
            jwt_private_key_pem: None,
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            verify_email_ttl_secs: 24 * 3600,
            reset_password_ttl_secs: 3600,
            unverified_account_ttl_secs: 7 * 24 * 3600,
            require_verified_email: production,
            mailer: if production {
                MailerKind::Smtp
            } else {
                MailerKind::File
            },
            mail_dir: ".dev/mail".into(),
            smtp_host: String::new(),
            smtp_port: 25,
            smtp_username: None,
            smtp_password: None,
            mail_from: "Koupang <no-reply@koupang.local>".into(),
            storefront_url: "http://localhost:3000".into(),
            login_max_failures_per_account: 5,
            login_max_failures_per_ip: 50,
            login_failure_window_secs: 900,
            mail_requests_per_address: 3,
            mail_requests_per_client: 20,
            mail_request_window_secs: 3600,
            trusted_proxy_hops: 0,
            trust_forwarded_for: None,
            // OWASP's argon2id baseline (19 MiB, 2 passes); tests use a lighter cost of the same kind.
            argon2_memory_kib: if test { 1024 } else { 19 * 1024 },
            argon2_iterations: if test { 1 } else { 2 },
            argon2_parallelism: 1,
            argon2_max_concurrent: 0,
            argon2_max_queue: crate::password::DEFAULT_QUEUE as u32,
        }
    }

    /// `unverified_account_ttl_secs` for SQL (`validate` keeps it within `i32`).
    pub fn unverified_ttl_secs(&self) -> i64 {
        i64::try_from(self.unverified_account_ttl_secs).unwrap_or(i64::MAX)
    }

    /// Defaults for the profile in the environment, then the file, then the environment.
    pub fn load() -> Result<Self, ConfigError> {
        let profile = Profile::from_env("IDENTITY")?;
        let config = shared::config::load("IDENTITY", Self::defaults(profile))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errors = Vec::new();
        self.common.validate(&mut errors);
        if self.jwt_private_key_path.is_none() && self.jwt_private_key_pem.is_none() {
            errors.push(
                "IDENTITY_JWT_PRIVATE_KEY_PATH (or IDENTITY_JWT_PRIVATE_KEY_PEM) is required: \
                 identity signs access tokens with it (scripts/gen-keys.sh makes one)"
                    .into(),
            );
        }
        if !(60..=3600).contains(&self.access_token_ttl_secs) {
            errors.push("access_token_ttl_secs must be between 60 and 3600".into());
        }
        if self.refresh_token_ttl_secs < self.access_token_ttl_secs {
            errors
                .push("refresh_token_ttl_secs must not be shorter than the access token's".into());
        }
        if self.unverified_account_ttl_secs == 0
            || self.unverified_account_ttl_secs > i32::MAX as u64
        {
            errors.push("unverified_account_ttl_secs must be between 1 and 2147483647".into());
        }
        if self.login_max_failures_per_account == 0 || self.login_max_failures_per_ip == 0 {
            errors.push("login failure limits must be at least 1".into());
        }
        if self.trust_forwarded_for.is_some() {
            errors.push(
                "IDENTITY_TRUST_FORWARDED_FOR was replaced by IDENTITY_TRUSTED_PROXY_HOPS: the \
                 number of proxies in front of identity (0 = none; see docs/adr/009)"
                    .into(),
            );
        }
        if self.common.profile == Profile::Production && self.mailer != MailerKind::Smtp {
            errors.push(format!(
                "IDENTITY_MAILER={} cannot deliver mail, and the production profile requires \
                 verified email: nobody could verify an address or reset a password. Set \
                 IDENTITY_MAILER=smtp and IDENTITY_SMTP_HOST",
                self.mailer.as_str()
            ));
        }
        if self.mailer == MailerKind::Smtp {
            if self.smtp_host.trim().is_empty() {
                errors.push("IDENTITY_SMTP_HOST is required with IDENTITY_MAILER=smtp".into());
            }
            if self.smtp_port == 0 {
                errors.push("IDENTITY_SMTP_PORT must not be 0".into());
            }
            if self.smtp_username.is_some() != self.smtp_password.is_some() {
                errors.push(
                    "IDENTITY_SMTP_USERNAME and IDENTITY_SMTP_PASSWORD go together (both or neither)"
                        .into(),
                );
            }
        }
        if self.mail_requests_per_address == 0
            || self.mail_requests_per_client == 0
            || self.mail_request_window_secs == 0
        {
            errors.push("mail request limits and their window must be at least 1".into());
        }
        if self.argon2_memory_kib < 8 * self.argon2_parallelism || self.argon2_iterations == 0 {
            errors.push("argon2 parameters are out of range".into());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(errors.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_requires_verified_email_and_local_does_not() {
        assert!(IdentityConfig::defaults(Profile::Production).require_verified_email);
        assert!(!IdentityConfig::defaults(Profile::Local).require_verified_email);
    }

    #[test]
    fn the_mailer_setting_is_one_of_the_known_kinds_and_nothing_else() {
        assert_eq!(
            serde_json::from_value::<MailerKind>(serde_json::json!("file")).unwrap(),
            MailerKind::File
        );
        assert_eq!(
            serde_json::from_value::<MailerKind>(serde_json::json!("log")).unwrap(),
            MailerKind::Log
        );
        assert_eq!(
            serde_json::from_value::<MailerKind>(serde_json::json!("smtp")).unwrap(),
            MailerKind::Smtp
        );
        for bad in ["sendmail", "File", ""] {
            assert!(serde_json::from_value::<MailerKind>(serde_json::json!(bad)).is_err());
        }
    }

    #[test]
    fn the_replaced_trust_forwarded_for_setting_is_refused_not_ignored() {
        let mut config = IdentityConfig::defaults(Profile::Local);
        config.jwt_private_key_pem = Some(Secret::new(String::from("pem")));
        assert!(config.validate().is_ok());
        let loaded = shared::config::load_from("IDENTITY", config, None, |k| {
            (k == "IDENTITY_TRUST_FORWARDED_FOR").then(|| "true".to_owned())
        })
        .unwrap();
        let err = loaded.validate().unwrap_err();
        assert!(err.0.contains("IDENTITY_TRUSTED_PROXY_HOPS"), "{err}");
    }

    fn production(mailer: MailerKind) -> IdentityConfig {
        let mut config = IdentityConfig::defaults(Profile::Production);
        config.jwt_private_key_pem = Some(Secret::new(String::from("pem")));
        config.mailer = mailer;
        config.smtp_host = "relay.internal".into();
        config
    }

    #[test]
    fn production_refuses_to_start_with_a_mailer_that_cannot_deliver() {
        for kind in [MailerKind::Log, MailerKind::File] {
            let err = production(kind).validate().unwrap_err();
            assert!(
                err.0
                    .contains(&format!("IDENTITY_MAILER={} cannot deliver", kind.as_str()))
                    && err.0.contains("IDENTITY_MAILER=smtp"),
                "{err}"
            );
        }
        assert!(production(MailerKind::Smtp).validate().is_ok());
    }

    #[test]
    fn production_defaults_to_smtp_and_refuses_to_start_without_a_relay() {
        let mut config = production(MailerKind::Smtp);
        config.mailer = IdentityConfig::defaults(Profile::Production).mailer;
        config.smtp_host = String::new();
        let err = config.validate().unwrap_err();
        assert!(err.0.contains("IDENTITY_SMTP_HOST is required"), "{err}");
    }

    #[test]
    fn smtp_credentials_go_together() {
        let mut config = production(MailerKind::Smtp);
        config.smtp_username = Some("identity".into());
        let err = config.validate().unwrap_err();
        assert!(err.0.contains("IDENTITY_SMTP_PASSWORD"), "{err}");
        config.smtp_password = Some(Secret::new(String::from("s3cret")));
        assert!(config.validate().is_ok());
    }

    #[test]
    fn a_missing_signing_key_is_a_clear_start_up_error() {
        let err = IdentityConfig::defaults(Profile::Local)
            .validate()
            .unwrap_err();
        assert!(err.0.contains("IDENTITY_JWT_PRIVATE_KEY_PATH"), "{err}");
    }
}
