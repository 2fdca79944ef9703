//! Outgoing mail behind a trait. The file mailer (local stack and tests) writes every message as a
//! file into a folder, atomically, so a person or a test can read the link in it; the log mailer
//! only logs that a message would be sent; the SMTP mailer hands each message to a relay (the
//! only one that delivers, so the only one production accepts).
//!
//! SMTP is spoken in plain text (no STARTTLS, no SMTPS): TLS in lettre needs rustls or
//! native-tls, a TLS stack the workspace does not otherwise carry. The relay is ours — a local
//! MTA or a sidecar on a trusted network that does TLS onwards — so credentials, if any, never
//! cross an untrusted network.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

pub type SendFuture<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'a>>;

pub trait Mailer: Send + Sync {
    fn send<'a>(&'a self, mail: &'a Mail) -> SendFuture<'a>;
}

pub struct FileMailer {
    dir: PathBuf,
    from: String,
}

impl FileMailer {
    pub fn new(dir: impl Into<PathBuf>, from: &str) -> anyhow::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("mail_dir {}: {e}", dir.display()))?;
        Ok(Self {
            dir,
            from: from.to_owned(),
        })
    }
}

impl Mailer for FileMailer {
    fn send<'a>(&'a self, mail: &'a Mail) -> SendFuture<'a> {
        Box::pin(async move {
            let id = shared::id::new_id();
            let text = format!(
                "From: {}\nTo: {}\nSubject: {}\nDate: {}\n\n{}\n",
                self.from,
                mail.to,
                mail.subject,
                chrono::Utc::now().to_rfc2822(),
                mail.body
            );
            let tmp = self.dir.join(format!(".{id}.tmp"));
            let path = self.dir.join(format!("{id}.eml"));
            tokio::fs::write(&tmp, text).await?;
            tokio::fs::rename(&tmp, &path).await?;
            tracing::info!(to = %mail.to, subject = %mail.subject, path = %path.display(), "mail written");
            Ok(())
        })
    }
}

pub struct LogMailer;

impl Mailer for LogMailer {
    fn send<'a>(&'a self, mail: &'a Mail) -> SendFuture<'a> {
        Box::pin(async move {
            tracing::info!(to = %mail.to, subject = %mail.subject, "mail (log mailer, not delivered)");
            Ok(())
        })
    }
}

/// Delivers through an SMTP relay, one connection per message.
pub struct SmtpMailer {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl SmtpMailer {
    pub fn new(
        host: &str,
        port: u16,
        credentials: Option<(String, String)>,
        from: &str,
    ) -> anyhow::Result<Self> {
        let from = from
            .parse()
            .map_err(|e| anyhow::anyhow!("mail_from '{from}' is not a mailbox: {e}"))?;
        let mut builder =
            lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous(host)
                .port(port)
                .timeout(Some(std::time::Duration::from_secs(30)));
        if let Some((user, password)) = credentials {
            builder = builder.credentials(
                lettre::transport::smtp::authentication::Credentials::new(user, password),
            );
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }
}

impl Mailer for SmtpMailer {
    fn send<'a>(&'a self, mail: &'a Mail) -> SendFuture<'a> {
        use lettre::AsyncTransport;
        Box::pin(async move {
            let message = lettre::Message::builder()
                .from(self.from.clone())
                .to(mail
                    .to
                    .parse()
                    .map_err(|e| anyhow::anyhow!("recipient is not a mailbox: {e}"))?)
                .subject(mail.subject.clone())
                .header(lettre::message::header::ContentType::TEXT_PLAIN)
                .body(mail.body.clone())?;
            self.transport.send(message).await?;
            tracing::info!(to = %mail.to, subject = %mail.subject, "mail handed to the SMTP relay");
            Ok(())
        })
    }
}
