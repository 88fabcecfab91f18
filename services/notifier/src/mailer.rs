//! The email channel: one message over SMTP (STARTTLS, implicit TLS and authentication as
//! `SMTP_URL` says) or into a directory of `.eml` files, and whether a failure is worth retrying.

use crate::channels::{Delivered, Outgoing, SendError, Transport};
use crate::settings::Settings;
use futures_util::future::BoxFuture;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
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

enum SmtpOrFile {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    File(AsyncFileTransport<Tokio1Executor>),
}

pub struct Mailer {
    transport: SmtpOrFile,
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
                Ok(Self { transport: SmtpOrFile::Smtp(transport), from, mail_dir: None })
            }
            None => {
                let dir = PathBuf::from(&settings.mail_dir);
                std::fs::create_dir_all(&dir).map_err(|error| MailerError::MailDir(dir.clone(), error))?;
                let transport = AsyncFileTransport::<Tokio1Executor>::new(&dir);
                Ok(Self { transport: SmtpOrFile::File(transport), from, mail_dir: Some(dir) })
            }
        }
    }

    /// Where emails are written when there is no SMTP server; `None` when sending over SMTP.
    pub fn mail_dir(&self) -> Option<&Path> {
        self.mail_dir.as_deref()
    }

    /// Sends one email: plain text, with an HTML alternative when there is one. The
    /// Message-ID is stable per notification, so a rare resend (a lease that expired mid-send)
    /// can be recognised as the same email by the receiver.
    pub async fn send(&self, message: Outgoing<'_>) -> Result<Delivered, SendError> {
        let to: Mailbox = message.recipient.parse().map_err(|error| {
            SendError::Permanent(format!("invalid recipient `{}`: {error}", message.recipient))
        })?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject)
            .message_id(Some(format!("<{}@notifier>", message.id)));
        let built = match message.html_body {
            Some(html) => {
                builder.multipart(MultiPart::alternative_plain_html(message.body.to_owned(), html.to_owned()))
            }
            None => builder.singlepart(
                SinglePart::builder().header(ContentType::TEXT_PLAIN).body(message.body.to_owned()),
            ),
        };
        let email =
            built.map_err(|error| SendError::Permanent(format!("cannot build the email: {error}")))?;
        match &self.transport {
            SmtpOrFile::Smtp(smtp) => {
                smtp.send(email).await.map(|_| Delivered::sent("smtp")).map_err(|error| {
                    // Only a 5xx answer is final; refused connections, timeouts and 4xx may pass.
                    if error.is_permanent() {
                        SendError::Permanent(error.to_string())
                    } else {
                        SendError::Transient(error.to_string())
                    }
                })
            }
            // A full or unwritable disk may recover; nothing here is the email's fault. The file
            // is the delivery development asked for (a mailbox to read), so it counts as sent,
            // and the provider says where it went.
            SmtpOrFile::File(file) => file
                .send(email)
                .await
                .map(|_| Delivered::sent("mail_dir"))
                .map_err(|error| SendError::Transient(error.to_string())),
        }
    }
}

impl Transport for Mailer {
    fn send<'a>(&'a self, message: Outgoing<'a>) -> BoxFuture<'a, Result<Delivered, SendError>> {
        Box::pin(Mailer::send(self, message))
    }
}
