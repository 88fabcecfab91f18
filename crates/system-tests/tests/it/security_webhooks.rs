//! Issue 9, the webhook dispatcher's low findings, attacked end to end through the gateway (and
//! on the dispatcher's own port): credentials in a webhook URL must reach no log line, API
//! answer, attempt log or event; endpoint signing secrets must be sealed at rest, yet still
//! sign, rotate, survive a key rotation, and a wrong key must stop the start-up.

use crate::support::{SAGA_TIMEOUT, System, TEST_WEBHOOK_SECRET_KEY};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use contracts::events::PaymentFailed;
use contracts::{Envelope, Event};
use platform::settings::Secret;
use serde_json::{Value, json};
use std::sync::Mutex;
use testkit::{HttpReceiver, ReceivedRequest, eventually};
use uuid::Uuid;
use webhook_dispatcher::signing;

const ENDPOINTS: &str = "/api/v1/webhook-endpoints";
/// The password an attacker with log, API or database access must never see.
const PASSWORD: &str = "Sup3r-Secret-Pw-7f3a";

/// Every log line of this test process (each test runs in its own process under nextest).
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs a subscriber that writes every event (info and up; the dispatcher's and the
/// platform's down to trace) into [`LOGS`], before the services start theirs.
fn capture_logs() {
    let filter =
        tracing_subscriber::EnvFilter::new("info,webhook_dispatcher=trace,platform=trace,messaging=debug");
    let installed =
        tracing_subscriber::fmt().with_writer(|| Capture).with_env_filter(filter).with_ansi(false).try_init();
    assert!(
        installed.is_ok(),
        "the log capture must be the first subscriber: run under cargo nextest (make test)"
    );
}

fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

async fn create(system: &System, url: &str) -> Value {
    let (status, created) = system.admin_post(ENDPOINTS, &json!({"url": url})).await;
    assert_eq!(status, 201, "{created}");
    created
}

/// Publishes a `payment.failed` event (a webhook event type); returns its id.
async fn publish(system: &System) -> String {
    let event = Event::PaymentFailed(PaymentFailed {
        order_id: Uuid::now_v7(),
        payment_id: Uuid::now_v7(),
        code: "card_declined".into(),
        message: "Your card was declined".into(),
    });
    let envelope = Envelope::new("test", &event);
    system.publish_raw("payment.failed", &envelope.to_bytes()).await;
    envelope.id.to_string()
}

async fn request_for(receiver: &HttpReceiver, event_id: &str) -> ReceivedRequest {
    eventually("the webhook to arrive", SAGA_TIMEOUT, || async {
        receiver
            .received()
            .into_iter()
            .find(|r| r.headers.get("webhook-id").map(String::as_str) == Some(event_id))
    })
    .await
}

/// As a receiver checks it: the signature header against `secret`.
fn verifies(secret: &str, request: &ReceivedRequest) -> bool {
    let timestamp = request.headers["webhook-timestamp"].parse().unwrap();
    signing::verify(
        secret,
        &request.headers["webhook-id"],
        timestamp,
        &request.body,
        &request.headers["webhook-signature"],
    )
    .is_ok()
}

async fn stored_secrets(system: &System, id: &str) -> String {
    system
        .text(&format!(
            "SELECT secret || ' ' || coalesce(previous_secret, '-') AS t FROM webhooks.endpoints WHERE id = '{id}'"
        ))
        .await
        .concat()
}

/// The base64 body of a `whsec_` secret: what a leak of the key material would show.
fn key_material(secret: &str) -> &str {
    secret.strip_prefix("whsec_").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_webhooks_credentials_in_a_url_reach_no_log_answer_attempt_log_or_event() {
    capture_logs();
    let system = System::start().await;
    let with_password = |port: u16| format!("http://hook-user:{PASSWORD}@127.0.0.1:{port}/hooks");
    let gone = HttpReceiver::start().await.unwrap();
    gone.respond_with(410);

    // Created through the gateway: the answer shows the URL without its credentials.
    let working = create(&system, &with_password(system.receiver.port)).await;
    assert_eq!(working["url"], format!("http://redacted:redacted@127.0.0.1:{}/hooks", system.receiver.port));
    // Port 9 is closed: the HTTP client's error names the URL it could not reach.
    let refused = create(&system, &with_password(9)).await;
    let disabled = create(&system, &with_password(gone.port)).await;
    let ids: Vec<&str> = [&working, &refused, &disabled].map(|e| e["id"].as_str().unwrap()).to_vec();

    let event = publish(&system).await;
    // The credentials still do their job: the receiver gets them as Basic authentication.
    let request = request_for(&system.receiver, &event).await;
    let basic = format!("Basic {}", STANDARD.encode(format!("hook-user:{PASSWORD}")));
    assert_eq!(request.headers.get("authorization"), Some(&basic));
    let failed_attempt = format!("{ENDPOINTS}/{}/deliveries?event_id={event}", ids[1]);
    let delivery = eventually("an attempt at the closed port", SAGA_TIMEOUT, || async {
        let (_, page) = system.admin_get(&failed_attempt).await;
        page["items"].get(0).filter(|d| d["last_error"].is_string()).cloned()
    })
    .await;
    assert!(delivery["last_error"].as_str().unwrap().contains("refused"), "{delivery}");
    eventually("the 410 to disable its endpoint", SAGA_TIMEOUT, || async {
        let (_, endpoint) = system.admin_get(&format!("{ENDPOINTS}/{}", ids[2])).await;
        (endpoint["enabled"] == false).then_some(())
    })
    .await;
    eventually("the endpoint-disabled event", SAGA_TIMEOUT, || async {
        system.events().into_iter().find(|e| e["type"] == "webhook.endpoint_disabled").map(|_| ())
    })
    .await;

    // Everything an admin (or whoever takes an admin token) can read, through the gateway...
    let mut answers =
        vec![working.to_string(), refused.to_string(), system.admin_get(ENDPOINTS).await.1.to_string()];
    for id in &ids {
        answers.push(system.admin_get(&format!("{ENDPOINTS}/{id}")).await.1.to_string());
        answers.push(system.admin_get(&format!("{ENDPOINTS}/{id}/deliveries")).await.1.to_string());
        answers.push(
            system
                .admin_patch(&format!("{ENDPOINTS}/{id}"), &json!({"description": "x"}))
                .await
                .1
                .to_string(),
        );
    }
    // ... and on the dispatcher's own port (as the gateway calls it).
    let direct = system
        .http
        .get(format!("{}/webhook-endpoints", system.dispatcher_url))
        .bearer_auth(crate::support::as_gateway(&system.admin_token))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 200);
    answers.push(direct.text().await.unwrap());
    for answer in &answers {
        assert!(!answer.contains(PASSWORD), "an API answer shows the password: {answer}");
    }
    // The attempt log as stored, and every event published.
    let stored = system
        .text("SELECT coalesce(error, '') AS t FROM webhooks.attempts UNION ALL SELECT coalesce(last_error, '') FROM webhooks.deliveries")
        .await
        .concat();
    assert!(stored.contains("Connection refused"), "the attempt log still says what failed: {stored}");
    assert!(!stored.contains(PASSWORD), "the attempt log shows the password: {stored}");
    let events = serde_json::to_string(&system.events()).unwrap();
    assert!(events.contains("redacted:redacted@127.0.0.1"), "the disabled event names the endpoint");
    assert!(!events.contains(PASSWORD), "an event shows the password");
    // And every log line of the attempts, the disabling and the creations.
    let logs = logs();
    assert!(logs.contains("webhook attempt") && logs.contains("webhook endpoint disabled"), "{logs}");
    assert!(!logs.contains(PASSWORD), "a log line shows the password");
    // Each hand-published `payment.failed` names an order the gateway never had.
    system.finish_with(|e| e.expect_dead_letters("order-api.inbox.dlq", 1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_webhooks_endpoint_secrets_are_sealed_at_rest_and_still_sign_rotate_and_survive_a_key_rotation()
 {
    let mut system = System::start().await;
    let created = create(&system, &system.receiver.url("/hooks")).await;
    let (id, first) =
        (created["id"].as_str().unwrap().to_owned(), created["secret"].as_str().unwrap().to_owned());
    let row = stored_secrets(&system, &id).await;
    assert!(row.starts_with("v1."), "sealed: {row}");
    assert!(!row.contains(key_material(&first)), "the row holds the secret in clear: {row}");

    let event = publish(&system).await;
    assert!(verifies(&first, &request_for(&system.receiver, &event).await), "the issued secret verifies");

    // A rotation: the new secret and the one it replaces are both sealed, and both sign.
    let (status, rotated) = system.admin_post(&format!("{ENDPOINTS}/{id}/rotate-secret"), &json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    let second = rotated["secret"].as_str().unwrap().to_owned();
    let row = stored_secrets(&system, &id).await;
    assert_eq!(row.matches("v1.").count(), 2, "both sealed: {row}");
    assert!(!row.contains(key_material(&first)) && !row.contains(key_material(&second)), "{row}");
    let event = publish(&system).await;
    let request = request_for(&system.receiver, &event).await;
    assert!(verifies(&second, &request) && verifies(&first, &request), "both secrets sign");

    // A row left in plaintext by a version before sealing is sealed at the next start-up.
    let legacy = signing::generate_secret();
    system
        .execute(&format!(
            "UPDATE webhooks.endpoints SET secret = '{legacy}', previous_secret = NULL WHERE id = '{id}'"
        ))
        .await;
    system.stop_dispatcher().await;
    system.start_dispatcher(|_| {}).await;
    let sealed_by_first_key = stored_secrets(&system, &id).await;
    assert!(sealed_by_first_key.starts_with("v1.") && !sealed_by_first_key.contains(key_material(&legacy)));
    let event = publish(&system).await;
    assert!(verifies(&legacy, &request_for(&system.receiver, &event).await));

    // Key rotation: the new key seals, the old one still opens, start-up re-seals every row.
    let new_key = STANDARD.encode(rand::random::<[u8; 32]>());
    system.stop_dispatcher().await;
    system
        .start_dispatcher(|s| {
            s.webhook_secret_key = Some(Secret::new(new_key.clone()));
            s.webhook_secret_old_keys = Some(Secret::new(TEST_WEBHOOK_SECRET_KEY));
        })
        .await;
    let sealed_by_new_key = stored_secrets(&system, &id).await;
    let key_id = |sealed: &str| sealed.split('.').nth(1).unwrap().to_owned();
    assert_ne!(key_id(&sealed_by_new_key), key_id(&sealed_by_first_key), "re-sealed under the new key");
    let event = publish(&system).await;
    assert!(
        verifies(&legacy, &request_for(&system.receiver, &event).await),
        "signing survives the key rotation"
    );

    // A wrong key (or the old key alone once rows moved on) stops the start, naming the key.
    system.stop_dispatcher().await;
    let wrong = STANDARD.encode(rand::random::<[u8; 32]>());
    let refused = system
        .try_start_dispatcher(|s| {
            s.webhook_secret_key = Some(Secret::new(wrong));
            s.webhook_secret_old_keys = None;
        })
        .await;
    let message =
        format!("{:#}", refused.expect_err("the dispatcher refuses to start with a key that opens nothing"));
    assert!(
        message.contains(&key_id(&sealed_by_new_key)) && message.contains("WEBHOOK_SECRET_KEY"),
        "{message}"
    );
    assert_eq!(stored_secrets(&system, &id).await, sealed_by_new_key, "a refused start changes nothing");
    system
        .start_dispatcher(|s| {
            s.webhook_secret_key = Some(Secret::new(new_key));
            s.webhook_secret_old_keys = None;
        })
        .await;
    let event = publish(&system).await;
    assert!(verifies(&legacy, &request_for(&system.receiver, &event).await), "the right key works again");
    // Each hand-published `payment.failed` names an order the gateway never had.
    system.finish_with(|e| e.expect_dead_letters("order-api.inbox.dlq", 5)).await;
}
