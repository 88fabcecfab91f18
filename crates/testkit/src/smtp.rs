//! A small but real SMTP server (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP,
//! QUIT) on loopback, which keeps what it receives so tests can read the emails.

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// The raw message: headers, blank line, body (dot-unstuffed).
    pub data: String,
}

impl ReceivedMail {
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.data
            .lines()
            .take_while(|line| !line.is_empty())
            .find(|line| line.to_ascii_lowercase().starts_with(&prefix))
            .map(|line| line[prefix.len()..].trim().to_owned())
    }
}

#[derive(Clone)]
pub struct SmtpServer {
    pub port: u16,
    received: Arc<Mutex<Vec<ReceivedMail>>>,
}

impl SmtpServer {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    if let Err(error) = session(socket, store).await {
                        tracing::debug!(%error, "smtp test session ended");
                    }
                });
            }
        });
        Ok(Self { port, received })
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn received(&self) -> Vec<ReceivedMail> {
        self.received.lock().map(|mails| mails.clone()).unwrap_or_default()
    }
}

async fn session(socket: tokio::net::TcpStream, store: Arc<Mutex<Vec<ReceivedMail>>>) -> anyhow::Result<()> {
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
            to.push(address(&command[8..]));
            write.write_all(b"250 OK\r\n").await?;
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
