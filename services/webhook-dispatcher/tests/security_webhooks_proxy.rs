//! The dispatcher's HTTP client ignores `HTTP_PROXY`, `HTTPS_PROXY` and `ALL_PROXY`: the SSRF
//! guard checked the addresses the webhook goes to, and a proxy would make that check moot (it
//! would reach, on our behalf, what the guard refused) and see every signed body.
//!
//! Proxy variables are process-wide, and setting them here is `unsafe` (forbidden in this
//! workspace), so the test runs itself again as a child process with the variables set, a
//! "proxy" listener of the parent's in them. The child sends webhooks through the dispatcher's
//! `Sender` to a receiver of its own; the parent then counts the connections its proxy got:
//! exactly one, from a plain client the child uses as a control (proving the variables are
//! in force), none from the dispatcher.

#![expect(clippy::unwrap_used, reason = "a test should stop at the first unexpected value")]

use std::io::ErrorKind;
use std::process::Command;
use std::time::Duration;
use uuid::Uuid;
use webhook_dispatcher::guard::Guard;
use webhook_dispatcher::sender::Sender;
use webhook_dispatcher::store::Claimed;

/// Set in the child's environment: run the child's half.
const CHILD: &str = "SECURITY_WEBHOOKS_PROXY_CHILD";
const TEST: &str = "security_webhooks_a_webhook_goes_direct_even_with_a_proxy_in_the_environment";
const PROXY_VARIABLES: [&str; 6] =
    ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"];

fn delivery(url: String) -> Claimed {
    Claimed {
        id: Uuid::now_v7(),
        endpoint_id: Uuid::now_v7(),
        event_id: Uuid::now_v7(),
        event_type: "payment.failed".into(),
        order_id: None,
        payload: br#"{"probe":true}"#.to_vec(),
        attempts: 0,
        schedule_base: 0,
        url,
        secret: String::new(),
        previous_secret: None,
        headers: serde_json::json!({}),
    }
}

#[test]
fn security_webhooks_a_webhook_goes_direct_even_with_a_proxy_in_the_environment() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args([TEST, "--exact", "--nocapture", "--test-threads=1"]).env(CHILD, "1");
    for variable in PROXY_VARIABLES {
        command.env(variable, &proxy_url);
    }
    let output = command.env_remove("NO_PROXY").env_remove("no_proxy").output().unwrap();
    let said =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success() && said.contains("1 passed"), "the child failed:\n{said}");

    // Connections the kernel accepted for the proxy wait in its backlog: count them.
    proxy.set_nonblocking(true).unwrap();
    let mut dialled = 0;
    loop {
        match proxy.accept() {
            Ok(_) => dialled += 1,
            Err(error) if error.kind() == ErrorKind::WouldBlock => break,
            Err(error) => panic!("accept: {error}"),
        }
    }
    assert_eq!(dialled, 1, "only the control client may use the proxy; the dispatcher went through it");
}

fn child() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let receiver = testkit::HttpReceiver::start().await.unwrap();
        // The control: an ordinary client does honour the variables, so they are in force.
        let control = reqwest::Client::builder().timeout(Duration::from_secs(1)).build().unwrap();
        let through_proxy = control.post(receiver.url("/control")).send().await;
        assert!(through_proxy.is_err(), "the control client reached the receiver directly");
        assert!(receiver.received().is_empty());

        let guard = Guard::new("127.0.0.0/8,::1,localhost", false).unwrap();
        let sender = Sender::new(guard, Duration::from_secs(5)).unwrap();
        let secret = webhook_dispatcher::signing::generate_secret();
        // An address literal (the unpinned client) and a host name (a pinned client).
        for url in [receiver.url("/literal"), format!("http://localhost:{}/pinned", receiver.port)] {
            let sent = sender.send(&delivery(url.clone()), std::slice::from_ref(&secret)).await;
            assert_eq!(sent.status, Some(200), "{url}: {:?}", sent.error);
        }
        let paths: Vec<String> = receiver.received().into_iter().map(|r| r.path).collect();
        assert_eq!(paths, ["/literal", "/pinned"]);
    });
}
