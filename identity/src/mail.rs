//! Outgoing mail behind a trait. The file mailer (local stack and tests) writes every message as a
//! file into a folder, atomically, so a person or a test can read the link in it; the log mailer
//! only logs that a message would be sent. A real provider implements the same trait.

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
