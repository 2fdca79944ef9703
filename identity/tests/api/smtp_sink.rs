//! A tiny SMTP server for tests: speaks just enough (EHLO/HELO, AUTH PLAIN, MAIL, RCPT, DATA,
//! RSET, NOOP, QUIT) for lettre to deliver to it, and captures every message it accepts. The
//! reply that accepts a message can be held (until `release`), to make a slow relay.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

#[derive(Debug, Clone, Default)]
pub struct Captured {
    /// The decoded `AUTH PLAIN` credentials, if the client authenticated: (user, password).
    pub auth: Option<(String, String)>,
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent (headers and body), dot-stuffing undone.
    pub data: String,
}

impl Captured {
    /// The value of the body line `token: …`.
    pub fn token(&self) -> Option<String> {
        self.data
            .lines()
            .find_map(|l| l.strip_prefix("token: "))
            .map(|t| t.trim().to_owned())
    }
}

struct Inner {
    messages: Mutex<Vec<Captured>>,
    landed: Notify,
    open: watch::Sender<bool>,
}

pub struct SmtpSink {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpSink {
    /// A sink that accepts every message at once (until `hold`).
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner {
            messages: Mutex::new(Vec::new()),
            landed: Notify::new(),
            open: watch::channel(true).0,
        });
        let shared = inner.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, shared.clone()));
            }
        });
        Self { addr, inner, task }
    }

    /// From now on, messages land only after `release`.
    pub fn hold(&self) {
        self.inner.open.send_replace(false);
    }

    /// Let held messages land.
    pub fn release(&self) {
        self.inner.open.send_replace(true);
    }

    pub fn messages(&self) -> Vec<Captured> {
        self.inner.messages.lock().unwrap().clone()
    }

    /// Every message once at least `n` have landed; fails after 10 s.
    pub async fn wait_for(&self, n: usize) -> Vec<Captured> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let landed = self.inner.landed.notified();
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            if tokio::time::timeout_at(deadline, landed).await.is_err() {
                panic!(
                    "{} message(s) landed in the SMTP sink, expected {n}",
                    self.messages().len()
                );
            }
        }
    }
}

async fn session(stream: TcpStream, inner: Arc<Inner>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    if write.write_all(b"220 sink ESMTP\r\n").await.is_err() {
        return;
    }
    let mut current = Captured::default();
    let mut auth = None;
    loop {
        let mut line = String::new();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let answer: &[u8] = if upper.starts_with("EHLO") {
            b"250-sink\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            b"250 ok\r\n"
        } else if upper.starts_with("AUTH PLAIN") {
            auth = command
                .split_whitespace()
                .nth(2)
                .and_then(|b| {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD.decode(b).ok()
                })
                .and_then(|raw| {
                    let parts: Vec<String> = raw
                        .split(|b| *b == 0)
                        .map(|p| String::from_utf8_lossy(p).into_owned())
                        .collect();
                    (parts.len() == 3).then(|| (parts[1].clone(), parts[2].clone()))
                });
            b"235 authenticated\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            current = Captured {
                auth: auth.clone(),
                from: command[10..].trim().to_owned(),
                ..Captured::default()
            };
            b"250 ok\r\n"
        } else if upper.starts_with("RCPT TO:") {
            current.to.push(command[8..].trim().to_owned());
            b"250 ok\r\n"
        } else if upper == "RSET" {
            current = Captured::default();
            b"250 ok\r\n"
        } else if upper == "DATA" {
            if write.write_all(b"354 go on\r\n").await.is_err() {
                return;
            }
            loop {
                let mut data = String::new();
                match lines.read_line(&mut data).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if data == ".\r\n" {
                    break;
                }
                let data = data.strip_prefix('.').unwrap_or(&data);
                current.data.push_str(data);
            }
            // A held sink: the message lands only when the sink answers.
            let mut open = inner.open.subscribe();
            if open.wait_for(|open| *open).await.is_err() {
                return;
            }
            inner
                .messages
                .lock()
                .unwrap()
                .push(std::mem::take(&mut current));
            inner.landed.notify_waiters();
            b"250 queued\r\n"
        } else if upper == "QUIT" {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
        } else {
            b"502 not implemented\r\n"
        };
        if write.write_all(answer).await.is_err() {
            return;
        }
    }
}
