//! Live order updates (`GET /api/v1/orders/{id}/events`, `GET /api/v1/orders/events`): read
//! over real HTTP as Server-Sent Events, resumed with `Last-Event-ID`, across two gateway
//! replicas, limited per client, ended by a drain, and in headless Chromium with `EventSource`.

use crate::support::{SAGA_TIMEOUT, System, common_settings, mint_token, test_token_keys};
use messaging::ConsumerOptions;
use platform::auth::Role;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// One frame of a stream: an event (`id:` and the JSON `data:`) or a comment line.
#[derive(Debug)]
enum Frame {
    Event(i64, Value),
    Comment(String),
}

/// A Server-Sent Events client over a plain HTTP response.
struct Sse {
    response: reqwest::Response,
    buffer: String,
}

impl Sse {
    /// Opens `url`; the status and problem body when the gateway refuses.
    async fn open(url: &str, bearer: Option<&str>, last_event_id: Option<i64>) -> Result<Sse, (u16, Value)> {
        let mut request = reqwest::Client::new().get(url).header("Accept", "text/event-stream");
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.expect("gateway answers");
        let status = response.status().as_u16();
        if status != 200 {
            return Err((status, response.json().await.unwrap_or(Value::Null)));
        }
        let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(kind.starts_with("text/event-stream"), "not an event stream: {kind}");
        Ok(Sse { response, buffer: String::new() })
    }

    /// The next frame; `None` when the server ended the stream.
    async fn next(&mut self, within: Duration) -> Option<Frame> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                return Some(parse(block.trim_end()));
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no frame within {within:?}; have {:?}", self.buffer))
                .expect("the stream reads");
            self.buffer.push_str(std::str::from_utf8(&chunk?).unwrap());
        }
    }

    /// The next event, skipping comments.
    async fn next_event(&mut self, within: Duration) -> (i64, Value) {
        loop {
            match self.next(within).await.expect("the stream is open") {
                Frame::Event(id, data) => return (id, data),
                Frame::Comment(_) => {}
            }
        }
    }

    /// Every event up to the first heartbeat: all the stream had to send at once.
    async fn events_until_heartbeat(&mut self) -> Vec<(i64, Value)> {
        let mut events = Vec::new();
        loop {
            match self.next(Duration::from_secs(10)).await.expect("the stream is open") {
                Frame::Event(id, data) => events.push((id, data)),
                Frame::Comment(text) if text == "heartbeat" => return events,
                Frame::Comment(_) => {}
            }
        }
    }
}

fn parse(block: &str) -> Frame {
    let (mut id, mut data) = (None, None);
    for line in block.lines() {
        if let Some(comment) = line.strip_prefix(':') {
            return Frame::Comment(comment.trim().to_owned());
        }
        if let Some(value) = line.strip_prefix("id: ") {
            id = Some(value.parse().expect("a numeric id"));
        }
        if let Some(value) = line.strip_prefix("data: ") {
            data = Some(serde_json::from_str(value).expect("JSON data"));
        }
    }
    Frame::Event(id.expect("an event has an id"), data.expect("an event has data"))
}

/// A guest order of one unit of a new product: its id and access token.
async fn guest_order(system: &System, sku: &str) -> (String, String) {
    let product = system.product(sku, "5.00", 10).await;
    let (status, order) = system.order(&[(product, 1)], None).await;
    assert_eq!(status, 201, "{order}");
    (order["id"].as_str().unwrap().to_owned(), order["access_token"].as_str().unwrap().to_owned())
}

/// A second gateway on this test's database and vhost, stopped by its own token.
async fn start_replica(system: &System) -> (String, CancellationToken, JoinHandle<anyhow::Result<()>>) {
    let mut settings = order_api::settings::Settings::load().expect("default gateway settings");
    settings.common = common_settings(&system.db, &system.vhost, "order_api");
    settings.inventory_url = system.inventory.clone();
    settings.notifier_url = system.notifier.clone();
    settings.webhooks_url = system.dispatcher_url.clone();
    settings.metrics_addr = "127.0.0.1:0".into();
    settings.max_open_orders_per_client = 0;
    settings.live_heartbeat_ms = 300;
    let cancel = CancellationToken::new();
    let gateway =
        order_api::startup::build_gateway(settings, ConsumerOptions::new(order_api::SERVICE), cancel.clone())
            .await
            .expect("a second gateway starts");
    let url = format!("http://127.0.0.1:{}", gateway.service.port);
    (url, cancel, tokio::spawn(gateway.service.run_until_stopped()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_updates_stream_a_guest_order_until_confirmed_and_resume_after_a_disconnect() {
    let system = System::start_with(crate::support::Options {
        gateway: |s| s.live_heartbeat_ms = 300,
        ..Default::default()
    })
    .await;
    let (id, token) = guest_order(&system, "LIVE-1").await;
    let stream_url = system.url(&format!("/api/v1/orders/{id}/events?access_token={token}"));

    // A client sees the first change, then drops the connection.
    let mut first = Sse::open(&stream_url, None, None).await.unwrap();
    let (first_id, pending) = first.next_event(SAGA_TIMEOUT).await;
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["order_id"], id.as_str());
    drop(first);

    // Another client follows the order live until it is confirmed.
    let mut watcher = Sse::open(&stream_url, None, None).await.unwrap();
    let mut seen = Vec::new();
    while seen.last().is_none_or(|(_, data): &(i64, Value)| data["status"] != "confirmed") {
        seen.push(watcher.next_event(SAGA_TIMEOUT).await);
    }
    assert_eq!(seen[0].0, first_id, "the first event is the one the first client saw");
    let order = system.order_until(&id, "the order's history", |o| o["status"] == "confirmed").await;
    let history = order["status_history"].as_array().unwrap();
    assert_eq!(seen.len(), history.len(), "one event per history entry: {seen:?}");
    for ((_, event), entry) in seen.iter().zip(history) {
        let mut body = event.clone();
        body.as_object_mut().unwrap().remove("order_id");
        assert_eq!(&body, entry, "an event carries its history entry");
    }
    let ids: Vec<i64> = seen.iter().map(|(id, _)| *id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");

    // The first client comes back with Last-Event-ID: exactly what it missed, then heartbeats.
    let mut resumed = Sse::open(&stream_url, None, Some(first_id)).await.unwrap();
    let missed = resumed.events_until_heartbeat().await;
    assert_eq!(missed, seen[1..].to_vec(), "the resumed stream replays exactly the missed events");

    let (status, problem) = Sse::open(&stream_url, None, Some(i64::MAX)).await.err().unwrap();
    assert_eq!((status, problem["code"].as_str()), (400, Some("invalid_last_event_id")));
    drop((watcher, resumed));
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_updates_hide_someone_elses_order_and_limit_streams_per_client() {
    let system = System::start_with(crate::support::Options {
        gateway: |s| {
            s.live_heartbeat_ms = 200;
            s.live_max_streams_per_client = 2;
        },
        ..Default::default()
    })
    .await;
    let (id, _token) = guest_order(&system, "LIVE-2").await;
    let bob =
        mint_token(&test_token_keys(600), uuid::Uuid::new_v4(), "bob@example.com", "Bob", Role::Customer);
    let stream_url = system.url(&format!("/api/v1/orders/{id}/events"));
    for (who, bearer, url) in [
        ("another customer", Some(bob.as_str()), stream_url.clone()),
        ("no credentials", None, stream_url.clone()),
        ("a wrong access token", None, format!("{stream_url}?access_token=not-the-token")),
    ] {
        let refused = Sse::open(&url, bearer, None).await.err();
        let (status, problem) = refused.unwrap_or_else(|| panic!("{who} got a stream"));
        assert_eq!((status, problem["code"].as_str()), (404, Some("not_found")), "{who}");
    }

    // Two streams per client; the third is refused until one closes.
    let all = system.url("/api/v1/orders/events");
    let one = Sse::open(&all, Some(&system.admin_token), None).await.unwrap();
    let _two = Sse::open(&all, Some(&system.admin_token), None).await.unwrap();
    let (status, problem) = Sse::open(&all, Some(&system.admin_token), None).await.err().unwrap();
    assert_eq!(
        (status, problem["code"].as_str(), problem["limit"].as_i64()),
        (429, Some("too_many_streams"), Some(2))
    );
    assert!(Sse::open(&all, Some(&bob), None).await.is_ok(), "another client has its own streams");
    drop(one);
    testkit::eventually("a closed stream to free its slot", Duration::from_secs(10), || async {
        Sse::open(&all, Some(&system.admin_token), None).await.ok()
    })
    .await;
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_updates_a_change_through_one_replica_reaches_a_stream_on_another() {
    let system = System::start().await;
    let (replica, cancel, task) = start_replica(&system).await;
    let (id, _) = guest_order(&system, "LIVE-3").await;
    system.terminal(&id).await;

    let mut on_replica =
        Sse::open(&format!("{replica}/api/v1/orders/events"), Some(&system.admin_token), None).await.unwrap();
    let (status, body) =
        system.admin_post(&format!("/api/v1/orders/{id}/status"), &json!({"status": "shipped"})).await;
    assert_eq!(status, 200, "shipped through the first gateway: {body}");
    // The stream starts at the last settled row: the saga's own rows may still come first
    // when another transaction on the server held them back.
    let event = loop {
        let (_, event) = on_replica.next_event(Duration::from_secs(20)).await;
        if event["status"] == "shipped" {
            break event;
        }
        assert!(matches!(event["status"].as_str(), Some("pending" | "processing" | "confirmed")), "{event}");
    };
    assert_eq!(event["order_id"], id.as_str());
    assert_eq!(event["caused_by"], "admin", "the admin's change, made through the first gateway");

    drop(on_replica);
    cancel.cancel();
    let stopped = tokio::time::timeout(Duration::from_secs(30), task).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "the replica stops cleanly: {stopped:?}");
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_updates_end_when_the_gateway_drains() {
    let system = System::start().await;
    let (replica, cancel, task) = start_replica(&system).await;
    let mut stream =
        Sse::open(&format!("{replica}/api/v1/orders/events"), Some(&system.admin_token), None).await.unwrap();
    assert!(
        matches!(stream.next(Duration::from_secs(5)).await, Some(Frame::Comment(_))),
        "the stream is open"
    );
    cancel.cancel();
    // Within the drain: the server ends the stream instead of holding the shutdown open.
    let started = Instant::now();
    loop {
        match stream.next(Duration::from_secs(8)).await {
            None => break,
            Some(Frame::Comment(_)) => {}
            Some(Frame::Event(id, data)) => panic!("no event expected, got {id}: {data}"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(8), "ended by the drain, not a timeout");
    let stopped = tokio::time::timeout(Duration::from_secs(30), task).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "the replica stops cleanly: {stopped:?}");
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_updates_reach_an_eventsource_in_headless_chromium() {
    // The page is a local file (origin `null`): EventSource needs the gateway's CORS answer.
    let system = System::start_with(crate::support::Options {
        gateway: |s| s.cors_allowed_origins = "*".into(),
        ..Default::default()
    })
    .await;
    let (id, token) = guest_order(&system, "LIVE-4").await;
    system.terminal(&id).await;
    let browser = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| std::process::Command::new(b).arg("--version").output().is_ok_and(|o| o.status.success()))
        .expect("chromium is installed (scripts/setup-test-deps.sh installs it)");
    let dir = std::env::temp_dir().join(format!("live-{}", system.db.name));
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("watch.html");
    let source = system.url(&format!("/api/v1/orders/{id}/events?access_token={token}"));
    std::fs::write(
        &page,
        format!(
            r#"<!doctype html><html><body><pre id="log"></pre><script>
const log = document.getElementById("log");
const source = new EventSource("{source}");
source.onmessage = (e) => {{
  const change = JSON.parse(e.data);
  log.textContent += "event " + e.lastEventId + " " + change.order_id + " " + change.status + "\n";
  if (change.status === "confirmed") {{ source.close(); log.textContent += "done\n"; }}
}};
source.onerror = () => {{ log.textContent += "error\n"; }};
</script></body></html>"#
        ),
    )
    .unwrap();
    let run = tokio::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            &format!("--user-data-dir={}", dir.join("profile").display()),
            "--virtual-time-budget=15000",
            "--dump-dom",
            &format!("file://{}", page.display()),
        ])
        .kill_on_drop(true)
        .output();
    let output =
        tokio::time::timeout(Duration::from_secs(90), run).await.expect("chromium finishes").unwrap();
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(dom.contains(&format!("{id} confirmed")), "the page did not receive the confirmed event:\n{dom}");
    assert!(dom.contains(&format!("{id} pending")), "the page got the history from its start:\n{dom}");
    assert!(dom.contains("done"), "{dom}");
    let _ = std::fs::remove_dir_all(dir);
    system.finish().await;
}
