//! A small but real SMTP server (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP,
//! QUIT) on loopback, which keeps what it receives so tests can read the emails, and can be
//! told to refuse every recipient (`fail_with`) or one address (`fail_for`), or to go down and
//! come back on the same port.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::{JoinHandle, JoinSet};

#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// The raw message: headers, blank line, body (dot-unstuffed).
    pub data: String,
}

impl ReceivedMail {
    /// The first header called `name`, unfolded (continuation lines joined with a space).
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        let mut lines = self.data.lines().take_while(|line| !line.is_empty());
        let first = lines.find(|line| line.to_ascii_lowercase().starts_with(&prefix))?;
        let mut value = first[prefix.len()..].trim().to_owned();
        for continuation in lines.take_while(|line| line.starts_with([' ', '\t'])) {
            value.push(' ');
            value.push_str(continuation.trim());
        }
        Some(value)
    }
}

#[derive(Clone)]
pub struct SmtpServer {
    pub port: u16,
    received: Arc<Mutex<Vec<ReceivedMail>>>,
    /// The reply code to every RCPT TO, when set (e.g. 451 or 550); 0 means accept.
    fail_with: Arc<AtomicU16>,
    /// Reply codes for single addresses (lower-cased), checked after `fail_with`.
    fail_for: Arc<Mutex<HashMap<String, u16>>>,
    /// Every `RCPT TO` address seen, accepted or not, in order: what was attempted.
    attempted: Arc<Mutex<Vec<String>>>,
    /// The accept loop, which owns the listener and every open session; `None` while down.
    running: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl SmtpServer {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let server = Self {
            port,
            received: Arc::new(Mutex::new(Vec::new())),
            fail_with: Arc::new(AtomicU16::new(0)),
            fail_for: Arc::default(),
            attempted: Arc::default(),
            running: Arc::new(Mutex::new(None)),
        };
        server.serve(listener);
        Ok(server)
    }

    fn serve(&self, listener: TcpListener) {
        let refusals = Refusals {
            all: self.fail_with.clone(),
            by_address: self.fail_for.clone(),
            attempted: self.attempted.clone(),
        };
        let store = self.received.clone();
        let task = tokio::spawn(async move {
            // Sessions live in the loop's JoinSet, so stopping the loop closes them too.
            let mut sessions = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((socket, _)) = accepted else { return };
                        let (store, refusals) = (store.clone(), refusals.clone());
                        sessions.spawn(async move {
                            if let Err(error) = session(socket, store, refusals).await {
                                tracing::debug!(%error, "smtp test session ended");
                            }
                        });
                    }
                    Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                }
            }
        });
        if let Ok(mut running) = self.running.lock() {
            *running = Some(task);
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn received(&self) -> Vec<ReceivedMail> {
        self.received.lock().map(|mails| mails.clone()).unwrap_or_default()
    }

    /// Answers every `RCPT TO` with `code` (4xx: try later, 5xx: never) until called with `None`.
    pub fn fail_with(&self, code: Option<u16>) {
        self.fail_with.store(code.unwrap_or(0), Ordering::SeqCst);
    }

    /// Answers `RCPT TO` for `address` alone with `code` (e.g. 550: this mailbox does not
    /// exist) until called with `None`; other addresses are unaffected.
    pub fn fail_for(&self, address: &str, code: Option<u16>) {
        if let Ok(mut by_address) = self.fail_for.lock() {
            match code {
                Some(code) => by_address.insert(address.to_ascii_lowercase(), code),
                None => by_address.remove(&address.to_ascii_lowercase()),
            };
        }
    }

    /// Every `RCPT TO` address offered so far, refused ones included, in order.
    pub fn attempted(&self) -> Vec<String> {
        self.attempted.lock().map(|seen| seen.clone()).unwrap_or_default()
    }

    /// Goes down: stops listening (connections are refused) and drops every open session.
    pub async fn stop(&self) {
        let task = self.running.lock().ok().and_then(|mut running| running.take());
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Comes back on the same port after [`stop`](Self::stop).
    pub async fn resume(&self) -> anyhow::Result<()> {
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(([127, 0, 0, 1], self.port).into())?;
        self.serve(socket.listen(128)?);
        Ok(())
    }
}

/// What a session needs to decide whether to refuse a recipient, and to note that it was tried.
#[derive(Clone)]
struct Refusals {
    all: Arc<AtomicU16>,
    by_address: Arc<Mutex<HashMap<String, u16>>>,
    attempted: Arc<Mutex<Vec<String>>>,
}

impl Refusals {
    /// The reply code for `address`, 0 to accept; records the attempt.
    fn code_for(&self, address: &str) -> u16 {
        if let Ok(mut attempted) = self.attempted.lock() {
            attempted.push(address.to_owned());
        }
        match self.all.load(Ordering::SeqCst) {
            0 => self
                .by_address
                .lock()
                .ok()
                .and_then(|by_address| by_address.get(&address.to_ascii_lowercase()).copied())
                .unwrap_or(0),
            code => code,
        }
    }
}

async fn session(
    socket: tokio::net::TcpStream,
    store: Arc<Mutex<Vec<ReceivedMail>>>,
    refusals: Refusals,
) -> anyhow::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 testkit ESMTP ready\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            write.write_all(b"250-testkit\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n").await?;
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("MAIL FROM:") {
            from = address(&command[10..]);
            to.clear();
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            let recipient = address(&command[8..]);
            match refusals.code_for(&recipient) {
                0 => {
                    to.push(recipient);
                    write.write_all(b"250 OK\r\n").await?;
                }
                code => {
                    write.write_all(format!("{code} testkit refuses this recipient\r\n").as_bytes()).await?
                }
            }
        } else if upper == "DATA" {
            write.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                let content = line.trim_end_matches(['\r', '\n']);
                if content == "." {
                    break;
                }
                data.push_str(
                    content.strip_prefix('.').filter(|_| content.starts_with("..")).unwrap_or(content),
                );
                data.push('\n');
            }
            if let Ok(mut mails) = store.lock() {
                mails.push(ReceivedMail { from: from.clone(), to: to.clone(), data });
            }
            write.write_all(b"250 OK queued\r\n").await?;
        } else if upper.starts_with("RSET") {
            from.clear();
            to.clear();
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 Bye\r\n").await?;
            return Ok(());
        } else {
            write.write_all(b"502 Command not implemented\r\n").await?;
        }
    }
}

fn address(raw: &str) -> String {
    raw.split_whitespace().next().unwrap_or("").trim_matches(['<', '>']).to_owned()
}
