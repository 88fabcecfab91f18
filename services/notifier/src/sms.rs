//! The SMS channel: a provider trait, an HTTP adapter (`POST {to, body}` as JSON with a bearer
//! token, the shape most SMS gateways accept) and a log-only default for development.

use crate::channels::{Delivered, Outgoing, SendError, Transport};
use futures_util::future::BoxFuture;
use platform::settings::Secret;
use std::time::Duration;

/// Short enough that a hung provider never outlives the row's lease.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

pub trait SmsProvider: Send + Sync {
    /// `Ok` says who took the text and whether it really left (see [`Delivered`]).
    fn send_sms<'a>(&'a self, to: &'a str, body: &'a str) -> BoxFuture<'a, Result<Delivered, SendError>>;
}

/// The SMS transport: whichever provider is configured.
pub struct Sms(pub Box<dyn SmsProvider>);

impl Transport for Sms {
    fn send<'a>(&'a self, message: Outgoing<'a>) -> BoxFuture<'a, Result<Delivered, SendError>> {
        self.0.send_sms(message.recipient, message.body)
    }
}

pub struct HttpSmsProvider {
    client: reqwest::Client,
    url: reqwest::Url,
    token: Option<Secret>,
}

impl HttpSmsProvider {
    /// Fails, naming the problem, when `url` is not an http(s) URL.
    pub fn new(url: &str, token: Option<Secret>) -> Result<Self, String> {
        let parsed = reqwest::Url::parse(url).map_err(|error| format!("`{url}`: {error}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("`{url}` is not an http(s) URL"));
        }
        let client = reqwest::Client::builder()
            .timeout(PROVIDER_TIMEOUT)
            .build()
            .map_err(|error| error.to_string())?;
        Ok(Self { client, url: parsed, token })
    }
}

impl SmsProvider for HttpSmsProvider {
    fn send_sms<'a>(&'a self, to: &'a str, body: &'a str) -> BoxFuture<'a, Result<Delivered, SendError>> {
        Box::pin(async move {
            let mut request =
                self.client.post(self.url.clone()).json(&serde_json::json!({ "to": to, "body": body }));
            if let Some(token) = &self.token {
                request = request.bearer_auth(token.expose());
            }
            let response = request
                .send()
                .await
                .map_err(|error| SendError::Transient(format!("SMS provider unreachable: {error}")))?;
            let status = response.status();
            if status.is_success() {
                return Ok(Delivered::sent("http"));
            }
            let error = format!("SMS provider answered {status}");
            // A 4xx says the request itself is wrong (bad number, bad token) except for a
            // timeout or rate limit; a 5xx says the provider is in trouble for now.
            if status.is_client_error()
                && status != reqwest::StatusCode::REQUEST_TIMEOUT
                && status != reqwest::StatusCode::TOO_MANY_REQUESTS
            {
                Err(SendError::Permanent(error))
            } else {
                Err(SendError::Transient(error))
            }
        })
    }
}

/// Development default: the message is logged (without the number or text), never sent, and
/// says so: the notification is recorded as `logged`, not `sent`.
pub struct LogSmsProvider;

impl SmsProvider for LogSmsProvider {
    fn send_sms<'a>(&'a self, to: &'a str, body: &'a str) -> BoxFuture<'a, Result<Delivered, SendError>> {
        let ending: String = to.chars().rev().take(2).collect::<Vec<_>>().into_iter().rev().collect();
        tracing::info!(to = %format!("…{ending}"), chars = body.chars().count(), "SMS not sent: no provider configured");
        Box::pin(async { Ok(Delivered::logged("log")) })
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "a test should stop at the first unexpected value")]
    use super::*;
    use testkit::HttpReceiver;

    async fn provider(receiver: &HttpReceiver) -> HttpSmsProvider {
        HttpSmsProvider::new(&receiver.url("/sms"), Some(Secret::new("sms-token"))).unwrap()
    }

    #[tokio::test]
    async fn a_text_is_posted_as_json_with_the_bearer_token() {
        let receiver = HttpReceiver::start().await.unwrap();
        let delivered = provider(&receiver).await.send_sms("+14155550123", "Order confirmed").await.unwrap();
        assert_eq!(delivered, Delivered::sent("http"));
        let received = receiver.received();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].path, "/sms");
        assert_eq!(received[0].headers["authorization"], "Bearer sms-token");
        assert_eq!(received[0].headers["content-type"], "application/json");
        let body: serde_json::Value = serde_json::from_slice(&received[0].body).unwrap();
        assert_eq!(body, serde_json::json!({"to": "+14155550123", "body": "Order confirmed"}));
    }

    #[tokio::test]
    async fn a_provider_4xx_is_permanent_and_a_5xx_or_429_transient() {
        let receiver = HttpReceiver::start().await.unwrap();
        let sms = provider(&receiver).await;
        for (status, permanent) in [(400, true), (401, true), (422, true), (429, false), (503, false)] {
            receiver.respond_with(status);
            let result = sms.send_sms("+14155550123", "x").await;
            assert!(
                matches!(
                    (&result, permanent),
                    (Err(SendError::Permanent(_)), true) | (Err(SendError::Transient(_)), false)
                ),
                "{status}: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_unreachable_provider_is_transient() {
        let url = format!("http://127.0.0.1:{}/sms", free_port());
        let sms = HttpSmsProvider::new(&url, None).unwrap();
        assert!(matches!(sms.send_sms("+1", "x").await, Err(SendError::Transient(_))));
        assert!(HttpSmsProvider::new("ftp://example.com", None).is_err());
    }

    #[tokio::test]
    async fn notifier_fixes_the_log_only_provider_says_it_only_logged() {
        let delivered = LogSmsProvider.send_sms("+14155550123", "Order confirmed").await;
        assert_eq!(delivered, Ok(Delivered::logged("log")));
    }

    fn free_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }
}
