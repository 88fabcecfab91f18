//! Operability: one trace per order across the five services, and metrics that answer an
//! operator's questions.

use crate::support::System;
use platform::telemetry::{LogFormat, SpanCollector};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use testkit::eventually;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const SERVICES: [&str; 5] = ["inventory", "notifier", "order-api", "payment", "webhook-dispatcher"];

/// Registers a webhook endpoint, places an order through the gateway as a client already in trace `TRACE_ID`, and waits until
/// it is confirmed, invoiced and announced.
async fn traced_order(system: &System) -> String {
    let (status, endpoint) =
        system.admin_post("/api/v1/webhook-endpoints", &json!({"url": system.receiver.url("/hooks")})).await;
    assert_eq!(status, 201, "{endpoint}");
    let laptop = system.product("LAPTOP-T", "10.00", 5).await;
    let body = json!({
        "customer_name": "Ada Lovelace",
        "customer_email": "ada@example.com",
        "items": [{"product_id": laptop, "quantity": 1}],
    });
    let response = system
        .http
        .post(system.url("/api/v1/orders"))
        .header("traceparent", format!("00-{TRACE_ID}-00f067aa0ba902b7-01"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let order: Value = response.json().await.unwrap();
    let id = order["id"].as_str().unwrap().to_owned();
    system
        .order_until(&id, "confirmed, invoiced and announced", |o| {
            o["status"] == "confirmed" && o["invoice_sent"] == true && o["webhook_sent"] == true
        })
        .await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_orders_spans_in_all_five_services_share_the_callers_trace() {
    // First in this process (nextest runs each test in its own), so it is the subscriber.
    let spans = SpanCollector::install(LogFormat::Pretty, "warn").expect("no subscriber installed yet");
    let system = System::start().await;
    let order_id = traced_order(&system).await;

    // Spans end when their work does; the last (order-api consuming webhook.delivered and
    // notification.sent) may finish just after the order shows both flags.
    let seen = eventually("spans of all five services in the order's trace", Duration::from_secs(20), || {
        let spans = spans.clone();
        async move {
            let services: BTreeSet<String> = spans
                .finished()
                .iter()
                .filter(|span| span.trace_id == TRACE_ID)
                .filter_map(|span| span.attribute("service").map(str::to_owned))
                .collect();
            (services.len() == SERVICES.len()).then_some(services)
        }
    })
    .await;
    assert_eq!(seen.iter().map(String::as_str).collect::<Vec<_>>(), SERVICES);

    let in_trace: Vec<_> = spans.finished().into_iter().filter(|s| s.trace_id == TRACE_ID).collect();
    let consumed = |service: &str, event_type: &str| {
        in_trace.iter().any(|s| {
            s.name == "consume"
                && s.attribute("service") == Some(service)
                && s.attribute("event_type") == Some(event_type)
                && s.attribute("order_id") == Some(order_id.as_str())
        })
    };
    assert!(consumed("inventory", "order.created"), "inventory's reservation continues the trace");
    assert!(consumed("payment", "payment.requested"), "payment's request continues the trace");
    assert!(consumed("order-api", "payment.succeeded"), "the worker's payment.succeeded continues it");
    assert!(consumed("order-api", "notification.sent"), "the sender's notification.sent continues it");
    assert!(consumed("order-api", "webhook.delivered"), "the dispatcher's webhook.delivered continues it");
    assert!(in_trace.iter().any(|s| s.name == "http" && s.attribute("service") == Some("order-api")));

    let hooks = system.receiver.received();
    let confirmed = hooks
        .iter()
        .find(|h| serde_json::from_slice::<Value>(&h.body).unwrap()["type"] == "order.confirmed")
        .expect("an order.confirmed webhook");
    let traceparent = confirmed.headers.get("traceparent").expect("the webhook carries a traceparent");
    assert!(traceparent.starts_with(&format!("00-{TRACE_ID}-")), "{traceparent}");
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gateway_exposes_metrics_that_answer_operators_questions() {
    let system = System::start().await;
    traced_order(&system).await;
    let expected = [
        "http_requests_total{",
        "http_request_duration_seconds_bucket{",
        "messages_consumed_total{queue=\"order-api.inbox\"",
        "message_batch_duration_seconds_bucket{",
        "outbox_backlog_events{service=\"order-api\"}",
        "outbox_oldest_event_age_seconds{service=\"inventory\"}",
        "db_pool_connections{service=\"payment\",state=\"in_use\"}",
        "db_pool_connections{service=\"order-api\",state=\"max\"}",
        "order_state_duration_seconds_bucket{from=\"processing\"",
        // Counted every 15 s, so this waits for the count after the order.
        "orders_by_status{status=\"confirmed\"} 1",
        "orders_stuck 0",
    ];
    let text = eventually("the gateway's /metrics to show every family", Duration::from_secs(40), || {
        let system = &system;
        async move {
            let metrics = format!("{}/metrics", system.metrics);
            let text = system.http.get(metrics).send().await.ok()?.text().await.ok()?;
            expected.iter().all(|name| text.contains(name)).then_some(text)
        }
    })
    .await;
    assert!(
        text.contains(
            "messages_consumed_total{queue=\"inventory.inbox\",type=\"order.created\",outcome=\"handled\"}"
        ),
        "{text}"
    );
    system.finish().await;
}
