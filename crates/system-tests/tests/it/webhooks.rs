//! Webhook endpoints and deliveries end to end: signatures checked by an independent Standard
//! Webhooks implementation, retries, disabling, recovery, isolation of slow receivers, the SSRF
//! guard and restarts. Every receiver is on loopback.

use crate::support::{SAGA_TIMEOUT, System};
use contracts::events::PaymentFailed;
use contracts::{Envelope, Event};
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;
use testkit::{HttpReceiver, ReceivedRequest, eventually};
use uuid::Uuid;

const ENDPOINTS: &str = "/api/v1/webhook-endpoints";

/// The Python of `var/venv`, where `make test` (scripts/setup-test-deps.sh) installs the
/// `standardwebhooks` package from PyPI: a project-local environment, since PEP 668 Pythons
/// refuse `pip install` into the system.
fn venv_python() -> std::path::PathBuf {
    testkit::repo_root().join("var/venv/bin/python")
}

fn standard_webhooks_available() {
    let imported = Command::new(venv_python()).args(["-c", "import standardwebhooks"]).status();
    assert!(
        imported.is_ok_and(|s| s.success()),
        "standardwebhooks is not installed in var/venv: run `bash scripts/setup-test-deps.sh` (make test does)"
    );
}

/// Verifies `request` with `standardwebhooks.Webhook(secret).verify(body, headers)`.
fn standard_webhooks_verifies(secret: &str, request: &ReceivedRequest) -> bool {
    const SCRIPT: &str = "import json, sys\nfrom standardwebhooks.webhooks import Webhook\n\
        d = json.load(sys.stdin)\nWebhook(d['secret']).verify(d['body'], d['headers'])\nprint('verified')";
    let input =
        json!({"secret": secret, "body": String::from_utf8_lossy(&request.body), "headers": request.headers});
    let mut child = Command::new(venv_python())
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    output.status.success() && String::from_utf8_lossy(&output.stdout).trim() == "verified"
}

/// Creates an endpoint for `url` (with `extra` fields); returns its id and secret.
async fn endpoint(system: &System, url: &str, extra: Value) -> (String, String) {
    let mut body = json!({"url": url});
    body.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    let (status, created) = system.admin_post(ENDPOINTS, &body).await;
    assert_eq!(status, 201, "{created}");
    (created["id"].as_str().unwrap().to_owned(), created["secret"].as_str().unwrap().to_owned())
}

/// Publishes a `payment.failed` event (a webhook event type) and returns its id.
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

/// Polls the endpoint's delivery of `event_id` until `done` holds for it.
async fn delivery_until(
    system: &System,
    endpoint: &str,
    event_id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let path = format!("{ENDPOINTS}/{endpoint}/deliveries?event_id={event_id}");
    eventually(&format!("the delivery of {event_id} to {endpoint}"), SAGA_TIMEOUT, || {
        let (path, done) = (path.clone(), &done);
        async move {
            let (status, page) = system.admin_get(&path).await;
            assert_eq!(status, 200, "{page}");
            page["items"].get(0).filter(|d| done(d)).cloned()
        }
    })
    .await
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

fn codes(delivery: &Value) -> Vec<Value> {
    delivery["attempt_log"].as_array().unwrap().iter().map(|a| a["status_code"].clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn endpoints_are_managed_and_deliveries_verify_with_standard_webhooks_across_a_secret_rotation() {
    standard_webhooks_available();
    let system = System::start().await;
    let (status, problem) = system
        .admin_post(
            ENDPOINTS,
            &json!({"url": system.receiver.url("/x"), "headers": {"Connection": "close", "Webhook-Id": "x"}}),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"].as_array().map(Vec::len), Some(2), "{problem}");

    let extra = json!({"event_types": ["payment.failed"], "description": "billing", "headers": {"X-Team": "billing"}});
    let (id, old_secret) = endpoint(&system, &system.receiver.url("/hooks"), extra).await;
    assert!(old_secret.starts_with("whsec_"));
    let (status, shown) = system.admin_get(&format!("{ENDPOINTS}/{id}")).await;
    assert_eq!((status, shown.get("secret"), &shown["headers"]["x-team"]), (200, None, &json!("billing")));
    let (_, page) = system.admin_get(ENDPOINTS).await;
    assert!(page["items"].as_array().unwrap().iter().any(|e| e["id"] == id.as_str()));
    let (status, patched) =
        system.admin_patch(&format!("{ENDPOINTS}/{id}"), &json!({"description": null})).await;
    assert_eq!((status, &patched["description"]), (200, &Value::Null), "{patched}");

    let first = publish(&system).await;
    let request = request_for(&system.receiver, &first).await;
    assert_eq!(request.headers["x-team"], "billing");
    assert_eq!(request.path, "/hooks");
    assert!(standard_webhooks_verifies(&old_secret, &request), "verifies with the endpoint's secret");
    assert!(!standard_webhooks_verifies("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &request));

    let (status, rotated) = system.admin_post(&format!("{ENDPOINTS}/{id}/rotate-secret"), &json!({})).await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert!(new_secret.starts_with("whsec_") && new_secret != old_secret);
    assert!(rotated["previous_secret_expires_at"].is_string());
    let second = publish(&system).await;
    let request = request_for(&system.receiver, &second).await;
    assert_eq!(request.headers["webhook-signature"].split(' ').count(), 2, "both secrets sign");
    assert!(standard_webhooks_verifies(&new_secret, &request), "the new secret verifies");
    assert!(standard_webhooks_verifies(&old_secret, &request), "the old secret still verifies");

    let (status, _) = system.admin_delete(&format!("{ENDPOINTS}/{id}")).await;
    assert_eq!(status, 204);
    assert_eq!(system.admin_get(&format!("{ENDPOINTS}/{id}")).await.0, 404);
    // Each hand-published `payment.failed` names an order the gateway never had.
    system.finish_with(|e| e.expect_dead_letters("order-api.inbox.dlq", 2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failures_are_retried_on_schedule_client_errors_are_not_and_both_can_be_sent_again() {
    let system = System::start().await;
    let flaky = HttpReceiver::start().await.unwrap();
    flaky.respond_in_sequence(&[500, 500]);
    let rejecting = HttpReceiver::start().await.unwrap();
    rejecting.respond_with(400);
    rejecting.respond_with_body("unknown customer");
    let (flaky_id, _) = endpoint(&system, &flaky.url("/hooks"), json!({})).await;
    let (rejecting_id, _) = endpoint(&system, &rejecting.url("/hooks"), json!({})).await;
    let event = publish(&system).await;

    let delivered = delivery_until(&system, &flaky_id, &event, |d| d["status"] == "delivered").await;
    assert_eq!(codes(&delivered), [json!(500), json!(500), json!(200)]);
    let arrivals: Vec<_> = flaky.received().iter().map(|r| r.at).collect();
    assert_eq!(arrivals.len(), 3, "delivered once, after two retries");
    // The test schedule is 200 ms then 400 ms, ±20 %.
    assert!(arrivals[1] - arrivals[0] >= Duration::from_millis(160));
    assert!(arrivals[2] - arrivals[1] >= Duration::from_millis(320));

    let failed = delivery_until(&system, &rejecting_id, &event, |d| d["status"] == "failed").await;
    assert_eq!(codes(&failed), [json!(400)], "a 400 is not retried");
    assert_eq!(failed["attempt_log"][0]["response_body"], "unknown customer");
    assert_eq!(rejecting.received().len(), 1);

    rejecting.respond_with(200);
    let recover = format!("{ENDPOINTS}/{rejecting_id}/recover");
    let (_, none) = system.admin_post(&recover, &json!({"since": "2999-01-01T00:00:00Z"})).await;
    assert_eq!(none, json!({"recovered": 0}));
    let (status, one) = system.admin_post(&recover, &json!({"since": "2000-01-01T00:00:00Z"})).await;
    assert_eq!((status, one), (200, json!({"recovered": 1})));
    let recovered = delivery_until(&system, &rejecting_id, &event, |d| d["status"] == "delivered").await;
    assert_eq!(codes(&recovered), [json!(400), json!(200)]);

    let resend = format!("/api/v1/webhook-deliveries/{}/resend", delivered["id"].as_str().unwrap());
    assert_eq!(system.admin_post(&resend, &json!({})).await.0, 202);
    delivery_until(&system, &flaky_id, &event, |d| d["status"] == "delivered" && d["attempts"] == 4).await;
    assert_eq!(flaky.received().len(), 4, "a resend is a fresh attempt, even when delivered");
    // Each hand-published `payment.failed` names an order the gateway never had.
    system.finish_with(|e| e.expect_dead_letters("order-api.inbox.dlq", 1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gone_disables_the_endpoint_and_so_does_failing_for_days() {
    let system = System::start().await;
    let gone = HttpReceiver::start().await.unwrap();
    gone.respond_with(410);
    let failing = HttpReceiver::start().await.unwrap();
    failing.respond_with(503);
    let (gone_id, _) = endpoint(&system, &gone.url("/hooks"), json!({})).await;
    let (failing_id, _) = endpoint(&system, &failing.url("/hooks"), json!({})).await;
    // As if its receiver had been failing for six days already (the limit is five).
    system
        .execute(&format!("UPDATE webhooks.endpoints SET failing_since = now() - interval '6 days' WHERE id = '{failing_id}'"))
        .await;
    publish(&system).await;

    for (id, reason) in [(&gone_id, "gone"), (&failing_id, "failing")] {
        let path = format!("{ENDPOINTS}/{id}");
        let disabled = eventually("the endpoint to be disabled", SAGA_TIMEOUT, || async {
            let (_, endpoint) = system.admin_get(&path).await;
            (endpoint["enabled"] == false).then_some(endpoint)
        })
        .await;
        assert_eq!(disabled["disabled_reason"], reason);
        eventually("webhook.endpoint_disabled", SAGA_TIMEOUT, || async {
            system.events().into_iter().find(|e| {
                e["type"] == "webhook.endpoint_disabled"
                    && e["data"]["endpoint_id"] == id.as_str()
                    && e["data"]["reason"] == reason
            })
        })
        .await;
    }
    assert_eq!(gone.received().len(), 1, "no retry after 410 Gone");
    assert_eq!(failing.received().len(), 1, "nothing more once disabled");
    // Each hand-published `payment.failed` names an order the gateway never had.
    system.finish_with(|e| e.expect_dead_letters("order-api.inbox.dlq", 1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_receiver_times_out_without_holding_up_other_endpoints() {
    let system = System::start().await;
    let slow = HttpReceiver::start().await.unwrap();
    slow.delay_answers(Duration::from_secs(5)); // the test timeout is 2 s
    let (slow_id, _) = endpoint(&system, &slow.url("/hooks"), json!({})).await;
    endpoint(&system, &system.receiver.url("/hooks"), json!({})).await;
    let mut events = Vec::new();
    for _ in 0..6 {
        events.push(publish(&system).await);
    }
    eventually("the fast endpoint to get all six", SAGA_TIMEOUT, || async {
        (system.receiver.received().len() >= 6).then_some(())
    })
    .await;
    let slow_attempts = format!(
        "SELECT count(*) AS n FROM webhooks.attempts a JOIN webhooks.deliveries d ON d.id = a.delivery_id WHERE d.endpoint_id = '{slow_id}'"
    );
    assert_eq!(system.count(&slow_attempts).await, 0, "while the slow endpoint's first attempts still hang");
    assert!(slow.received().len() <= 4, "at most 4 in flight per endpoint");

    let timed_out =
        delivery_until(&system, &slow_id, &events[0], |d| d["attempts"].as_i64() >= Some(1)).await;
    let attempt = &timed_out["attempt_log"][0];
    assert_eq!(attempt["status_code"], Value::Null);
    assert!(attempt["error"].as_str().unwrap().contains("timed out"), "{attempt}");
    assert!(attempt["duration_ms"].as_i64().unwrap() >= 1900, "{attempt}");
    // Each hand-published `payment.failed` names an order the gateway never had.
    system.finish_with(|e| e.expect_dead_letters("order-api.inbox.dlq", 6)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn loopback_targets_are_refused_unless_allowed_and_redirects_are_not_followed() {
    let mut system = System::start().await;
    let redirecting = HttpReceiver::start().await.unwrap();
    redirecting.respond_with(307);
    redirecting.respond_with_header("Location", &system.receiver.url("/elsewhere"));
    let (id, _) = endpoint(&system, &redirecting.url("/hooks"), json!({})).await;
    let first = publish(&system).await;
    let redirected = delivery_until(&system, &id, &first, |d| d["attempts"].as_i64() >= Some(1)).await;
    assert_eq!(redirected["attempt_log"][0]["status_code"], 307);
    assert!(system.receiver.received().is_empty(), "the redirect was not followed");

    // The same system, but a dispatcher whose allow-list does not name loopback.
    system.stop_dispatcher().await;
    system.start_dispatcher(|settings| settings.webhook_allowed_hosts = String::new()).await;
    let (status, problem) =
        system.admin_post(ENDPOINTS, &json!({"url": system.receiver.url("/hooks")})).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "url");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("loopback"), "{problem}");

    redirecting.respond_with(200);
    let second = publish(&system).await;
    let refused = delivery_until(&system, &id, &second, |d| d["status"] == "failed").await;
    let attempt = &refused["attempt_log"][0];
    assert_eq!(attempt["status_code"], Value::Null);
    assert!(attempt["error"].as_str().unwrap().starts_with("refused:"), "{attempt}");
    let second_sent = redirecting.received().iter().any(|r| r.headers.get("webhook-id") == Some(&second));
    assert!(!second_sent, "no connection was made");
    // Each hand-published `payment.failed` names an order the gateway never had.
    system.finish_with(|e| e.expect_dead_letters("order-api.inbox.dlq", 2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pending_deliveries_go_out_on_time_after_the_dispatcher_restarts() {
    let mut system = System::start().await;
    let receiver = HttpReceiver::start().await.unwrap();
    receiver.respond_in_sequence(&[503]);
    receiver.respond_with_header("Retry-After", "3");
    let (id, _) = endpoint(&system, &receiver.url("/hooks"), json!({})).await;
    let event = publish(&system).await;
    delivery_until(&system, &id, &event, |d| d["attempts"] == 1 && d["status"] == "pending").await;

    system.stop_dispatcher().await;
    system.start_dispatcher(|_| {}).await;
    let delivered = delivery_until(&system, &id, &event, |d| d["status"] == "delivered").await;
    assert_eq!(codes(&delivered), [json!(503), json!(200)]);
    let arrivals: Vec<_> = receiver.received().iter().map(|r| r.at).collect();
    assert_eq!(arrivals.len(), 2);
    assert!(arrivals[1] - arrivals[0] >= Duration::from_secs(3), "Retry-After: 3 was honoured");
    // Each hand-published `payment.failed` names an order the gateway never had.
    system.finish_with(|e| e.expect_dead_letters("order-api.inbox.dlq", 1)).await;
}
