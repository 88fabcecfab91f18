//! One signed POST to one endpoint, through the SSRF guard: the host is resolved and every
//! address checked first, and the connection is pinned to those addresses
//! (`ClientBuilder::resolve_to_addrs`), so a second DNS answer cannot point it elsewhere.
//! Redirects are never followed: a redirect is the endpoint's misconfiguration, and following
//! it could carry the signed body somewhere unintended. Proxies from the environment
//! (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`) are ignored too: the guard checked the addresses
//! we connect to, and a proxy would make that check moot (it would reach, on our behalf, what
//! the guard refused) as well as see every signed body.

use crate::domain::parse_retry_after;
use crate::guard::Guard;
use crate::store::Claimed;
use crate::{redact, signing};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How much of an answer is kept for the delivery log.
pub const MAX_RESPONSE_BYTES: usize = 4096;
const MAX_ERROR_CHARS: usize = 1000;
/// Pinned clients kept for reuse (their connection pools); past this the cache starts over.
const MAX_PINNED_CLIENTS: usize = 256;

/// What came of one attempt.
#[derive(Debug, Clone, Default)]
pub struct Sent {
    pub status: Option<u16>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub retry_after: Option<Duration>,
    /// The guard refused the target; nothing was sent.
    pub refused: bool,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub duration: Duration,
}

impl Sent {
    pub fn is_success(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// An attempt that failed before anything was sent, to be retried on the schedule.
    pub fn failed(message: String) -> Self {
        let mut sent = Self::error(message, false);
        sent.started_at = chrono::Utc::now();
        sent
    }

    fn error(message: String, refused: bool) -> Self {
        Self { error: Some(message.chars().take(MAX_ERROR_CHARS).collect()), refused, ..Self::default() }
    }
}

pub struct Sender {
    guard: Guard,
    timeout: Duration,
    /// For URLs whose host is an address literal: nothing to resolve, nothing to pin.
    direct: reqwest::Client,
    pinned: Mutex<HashMap<(String, Vec<SocketAddr>), reqwest::Client>>,
}

fn client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("orders-webhook-dispatcher/", env!("CARGO_PKG_VERSION")))
}

impl Sender {
    pub fn new(guard: Guard, timeout: Duration) -> reqwest::Result<Self> {
        Ok(Self { guard, timeout, direct: client_builder(timeout).build()?, pinned: Mutex::default() })
    }

    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// Sends `delivery` signed with each of `secrets` (plaintext: the current one first).
    pub async fn send(&self, delivery: &Claimed, secrets: &[String]) -> Sent {
        let (started_at, started) = (chrono::Utc::now(), Instant::now());
        let mut sent = self.attempt(delivery, secrets).await;
        sent.started_at = started_at;
        sent.duration = started.elapsed();
        sent
    }

    async fn attempt(&self, delivery: &Claimed, secrets: &[String]) -> Sent {
        let url = match reqwest::Url::parse(&delivery.url) {
            Ok(url) => url,
            Err(error) => return Sent::error(format!("invalid URL: {error}"), true),
        };
        let mut sent = self.attempt_to(delivery, secrets, url.clone()).await;
        // The error is stored, listed to admins and logged: no credential from the URL in it.
        sent.error = sent.error.map(|error| redact::scrub(&error, &url));
        sent
    }

    async fn attempt_to(&self, delivery: &Claimed, secrets: &[String], url: reqwest::Url) -> Sent {
        let client = match self.client_for(&url).await {
            Ok(client) => client,
            Err(error) => return Sent::error(format!("refused: {error}"), true),
        };
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let id = delivery.event_id.to_string();
        let timestamp = chrono::Utc::now().timestamp();
        let signed = match signing::headers_for_all(&secrets, &id, timestamp, &delivery.payload) {
            Ok(headers) => headers,
            Err(error) => return Sent::error(error.to_string(), false),
        };
        let mut request = client.post(url);
        // The endpoint's own headers first, so ours win (names were checked at creation).
        if let Some(extra) = delivery.headers.as_object() {
            for (name, value) in extra {
                if let Some(value) = value.as_str() {
                    request = request.header(name.as_str(), value);
                }
            }
        }
        request = request.header(reqwest::header::CONTENT_TYPE, contracts::envelope::CONTENT_TYPE);
        // The attempt's span, a child of the event's; nothing when tracing is off.
        if let Some(traceparent) = platform::trace::current_traceparent() {
            request = request.header(platform::trace::TRACEPARENT_HEADER, traceparent);
        }
        for (name, value) in signed {
            request = request.header(name, value);
        }
        match request.body(delivery.payload.clone()).send().await {
            Ok(response) => answered(response).await,
            // reqwest's message quotes the URL, credentials and all.
            Err(error) => Sent::error(describe(&error.without_url()), false),
        }
    }

    /// The client to use for `url`: checked by the guard, and pinned to the checked addresses.
    async fn client_for(&self, url: &reqwest::Url) -> Result<reqwest::Client, String> {
        let (host, mut addresses) = self.guard.resolve(url).await.map_err(|e| e.to_string())?;
        if host.parse::<std::net::IpAddr>().is_ok() {
            return Ok(self.direct.clone());
        }
        addresses.sort();
        let key = (host, addresses);
        let mut pinned = self.pinned.lock().map_err(|_| "client cache poisoned".to_owned())?;
        if let Some(client) = pinned.get(&key) {
            return Ok(client.clone());
        }
        if pinned.len() >= MAX_PINNED_CLIENTS {
            pinned.clear();
        }
        let client = client_builder(self.timeout)
            .resolve_to_addrs(&key.0, &key.1)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        pinned.insert(key, client.clone());
        Ok(client)
    }
}

async fn answered(mut response: reqwest::Response) -> Sent {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
    let mut body = Vec::new();
    // What arrives within the timeout; a receiver that stalls mid-body still gets its status.
    while body.len() < MAX_RESPONSE_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(MAX_RESPONSE_BYTES);
    let error = (!status.is_success()).then(|| format!("endpoint answered HTTP {status}"));
    Sent {
        status: Some(status.as_u16()),
        response_body: (!body.is_empty()).then(|| String::from_utf8_lossy(&body).into_owned()),
        error,
        retry_after,
        ..Sent::default()
    }
}

/// reqwest's own message hides the cause ("error sending request"); the chain names it
/// (connection refused, timed out, certificate invalid), which is what an integrator needs.
fn describe(error: &reqwest::Error) -> String {
    let mut message = if error.is_timeout() { format!("timed out: {error}") } else { error.to_string() };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refused_connections_are_described_and_bounded() {
        let client = client_builder(Duration::from_secs(2)).build();
        assert!(client.is_ok());
        let Ok(client) = client else { return };
        // Port 9 (discard) on loopback is closed on any sane test machine.
        let error = client.post("http://127.0.0.1:9/").send().await.err().map(|e| describe(&e));
        let sent = Sent::error(error.unwrap_or_default(), false);
        assert!(sent.error.as_ref().is_some_and(|e| !e.is_empty() && e.chars().count() <= MAX_ERROR_CHARS));
        assert!(!sent.is_success());
    }

    /// The attempt's error is stored, listed and logged, so it must not quote the URL's
    /// credentials. reqwest 0.13 moves them out of the URL before it can name it in an error;
    /// this guards that (and our scrubbing) against an upgrade that changes it.
    #[tokio::test]
    async fn a_failed_attempt_never_quotes_the_urls_credentials() {
        let Ok(guard) = Guard::new("127.0.0.0/8", false) else { return };
        let Ok(sender) = Sender::new(guard, Duration::from_secs(2)) else { return };
        let delivery = Claimed {
            id: uuid::Uuid::now_v7(),
            endpoint_id: uuid::Uuid::now_v7(),
            event_id: uuid::Uuid::now_v7(),
            event_type: "payment.failed".into(),
            order_id: None,
            payload: b"{}".to_vec(),
            attempts: 0,
            schedule_base: 0,
            url: "http://hook-user:Pw-s3cret-value@127.0.0.1:9/in".into(),
            secret: String::new(),
            previous_secret: None,
            headers: serde_json::json!({}),
        };
        let sent = sender.send(&delivery, &[signing::generate_secret()]).await;
        let error = sent.error.unwrap_or_default();
        assert!(error.contains("127.0.0.1:9") || error.contains("refused"), "{error}");
        assert!(!error.contains("Pw-s3cret-value") && !error.contains("hook-user"), "{error}");
    }
}
