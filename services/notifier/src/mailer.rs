//! Sending one email, over SMTP or into a directory of `.eml` files, and saying whether a
//! failure is worth retrying.

use crate::settings::Settings;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Long enough for a slow relay, short enough that a hung one never outlives the row's lease.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    #[error("invalid smtp_url: {0}")]
    SmtpUrl(#[from] lettre::transport::smtp::Error),
    #[error("invalid mail_from `{0}`: {1}")]
    From(String, lettre::address::AddressError),
    #[error("cannot create mail_dir `{0}`: {1}")]
    MailDir(PathBuf, std::io::Error),
}

/// Why one email was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Try again later: the server said 4xx, refused the connection or timed out.
    #[error("{0}")]
    Transient(String),
    /// Will never work: a 5xx answer or an address that cannot be written.
    #[error("{0}")]
    Permanent(String),
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    File(AsyncFileTransport<Tokio1Executor>),
}

pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    mail_dir: Option<PathBuf>,
}

impl Mailer {
    pub fn from_settings(settings: &Settings) -> Result<Self, MailerError> {
        let from: Mailbox = settings
            .mail_from
            .parse()
            .map_err(|error| MailerError::From(settings.mail_from.clone(), error))?;
        match &settings.smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())?
                    .timeout(Some(SMTP_TIMEOUT))
                    .build();
                Ok(Self {
                    transport: Transport::Smtp(transport),
                    from,
                    mail_dir: None,
                })
            }
            None => {
                let dir = PathBuf::from(&settings.mail_dir);
                std::fs::create_dir_all(&dir).map_err(|error| MailerError::MailDir(dir.clone(), error))?;
                let transport = AsyncFileTransport::<Tokio1Executor>::new(&dir);
                Ok(Self {
                    transport: Transport::File(transport),
                    from,
                    mail_dir: Some(dir),
                })
            }
        }
    }

    /// Where emails are written when there is no SMTP server; `None` when sending over SMTP.
    pub fn mail_dir(&self) -> Option<&Path> {
        self.mail_dir.as_deref()
    }

    /// Sends one plain-text email. `message_id` is stable per notification, so a rare resend
    /// (a lease that expired mid-send) can be recognised as the same email by the receiver.
    pub async fn send(&self, message_id: &str, to: &str, subject: &str, body: &str) -> Result<(), SendError> {
        let to: Mailbox = to
            .parse()
            .map_err(|error| SendError::Permanent(format!("invalid recipient `{to}`: {error}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<{message_id}@notifier>")))
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|error| SendError::Permanent(format!("cannot build the email: {error}")))?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(|error| {
                // Only a 5xx answer is final; refused connections, timeouts and 4xx may pass.
                if error.is_permanent() {
                    SendError::Permanent(error.to_string())
                } else {
                    SendError::Transient(error.to_string())
                }
            }),
            // A full or unwritable disk may recover; nothing here is the email's fault.
            Transport::File(file) => file
                .send(message)
                .await
                .map(|_| ())
                .map_err(|error| SendError::Transient(error.to_string())),
        }
    }
}

/// Every `.eml` file in `dir`, as text, oldest first; for tests and local development.
pub fn read_mail_dir(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "eml") {
            let modified = std::fs::metadata(&path)?.modified()?;
            files.push((modified, path));
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|(_, path)| std::fs::read_to_string(path))
        .collect()
}
