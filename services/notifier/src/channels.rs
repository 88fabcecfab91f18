//! Every way a notification leaves the service, behind one trait: the sender picks the
//! transport by the row's channel and learns only whether a failure is worth retrying.

use crate::domain::Channel;
use crate::mailer::{Mailer, MailerError};
use crate::settings::Settings;
use crate::sms::{HttpSmsProvider, LogSmsProvider, Sms, SmsProvider};
use futures_util::future::BoxFuture;
use std::sync::Arc;
use uuid::Uuid;

/// One message on its way out, as a transport sees it.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The notification's id: stable across attempts, so receivers can spot a resend.
    pub id: Uuid,
    pub recipient: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub html_body: Option<&'a str>,
}

/// Why one message was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Try again later: a 4xx SMTP answer, a provider 5xx or 429, a refused connection, a timeout.
    #[error("{0}")]
    Transient(String),
    /// Will never work: a 5xx SMTP answer, an invalid address, a provider 4xx.
    #[error("{0}")]
    Permanent(String),
}

/// Who took a message, and whether it really left: a log-only provider accepts a message
/// without sending it, and saying "sent" then would be a lie the operator cannot see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Stored with the notification: `smtp`, `mail_dir`, `http`, `log`.
    pub provider: &'static str,
    pub only_logged: bool,
}

impl Delivered {
    pub fn sent(provider: &'static str) -> Self {
        Self { provider, only_logged: false }
    }

    pub fn logged(provider: &'static str) -> Self {
        Self { provider, only_logged: true }
    }
}

pub trait Transport: Send + Sync {
    fn send<'a>(&'a self, message: Outgoing<'a>) -> BoxFuture<'a, Result<Delivered, SendError>>;
}

/// The transport of each channel.
#[derive(Clone)]
pub struct Channels {
    pub email: Arc<dyn Transport>,
    pub sms: Arc<dyn Transport>,
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelsError {
    #[error(transparent)]
    Mailer(#[from] MailerError),
    #[error("invalid sms_provider_url: {0}")]
    SmsProvider(String),
}

impl Channels {
    /// Email over SMTP (or into `.eml` files), SMS over HTTP (or only logged).
    pub fn from_settings(settings: &Settings) -> Result<Self, ChannelsError> {
        let mailer = Mailer::from_settings(settings)?;
        if let Some(dir) = mailer.mail_dir() {
            tracing::info!(dir = %dir.display(), "no SMTP_URL: emails are written as .eml files");
        }
        let provider: Box<dyn SmsProvider> = match &settings.sms_provider_url {
            Some(url) => Box::new(
                HttpSmsProvider::new(url, settings.sms_provider_token.clone())
                    .map_err(ChannelsError::SmsProvider)?,
            ),
            None => {
                tracing::info!("no SMS_PROVIDER_URL: text messages are only logged");
                Box::new(LogSmsProvider)
            }
        };
        Ok(Self { email: Arc::new(mailer), sms: Arc::new(Sms(provider)) })
    }

    pub fn get(&self, channel: Channel) -> &dyn Transport {
        match channel {
            Channel::Email => self.email.as_ref(),
            Channel::Sms => self.sms.as_ref(),
        }
    }
}
