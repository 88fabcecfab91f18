//! The real things tests talk to, isolated per test: a fresh PostgreSQL database with the
//! service schemas and roles, a fresh RabbitMQ vhost, a real SMTP server and a real HTTP
//! receiver on loopback, and polling with a deadline instead of sleeps.

pub mod http_receiver;
pub mod infra;
pub mod process;
pub mod smtp;

pub use http_receiver::{HttpReceiver, ReceivedRequest};
pub use infra::{TestDatabase, TestVhost};
pub use process::ServiceProcess;
pub use smtp::{ReceivedMail, SmtpServer};

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `probe` every 50 ms until it returns `Some`, or fails the test after `timeout` with
/// `what` in the message.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The repository root, for tests that read deploy files.
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
