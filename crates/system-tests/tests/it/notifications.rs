//! Notifications end to end: invoices with an HTML alternative received by a real SMTP server,
//! one email however often an event arrives or however many notifiers run, retries through an
//! SMTP outage, permanent rejections, operators retrying failures, cancellation and refund
//! notices, and the daily summary. Events are injected on the bus as other services send them.

use crate::support::{SAGA_TIMEOUT, System};
use contracts::events::{
    CancelledBy, Customer, FailureReason, OrderCancelled, OrderConfirmed, OrderFailed, OrderLine,
    PaymentRefunded,
};
use contracts::{Envelope, Event};
use notifier::summary::{SummaryOutcome, send_for_day};
use serde_json::{Value, json};
use testkit::{ReceivedMail, eventually};
use uuid::Uuid;

/// A value of any type serde reads from a JSON string (instants, dates), without naming chrono.
macro_rules! from_json {
    ($raw:expr) => {
        serde_json::from_value(json!($raw)).unwrap()
    };
}

fn customer(name: &str, phone: Option<&str>) -> Customer {
    Customer { name: name.into(), email: "ada@example.com".into(), phone: phone.map(str::to_owned) }
}

fn confirmed(order_id: Uuid, customer: Customer, currency: &str, total: &str) -> Event {
    Event::OrderConfirmed(OrderConfirmed {
        order_id,
        customer,
        currency: currency.parse().unwrap(),
        lines: vec![OrderLine {
            product_id: Uuid::from_u128(7),
            product_name: "Cables & Adapters".into(),
            quantity: 1,
            unit_price: total.parse().unwrap(),
            subtotal: total.parse().unwrap(),
        }],
        total_amount: total.parse().unwrap(),
        placed_at: from_json!("2026-11-21T09:30:00Z"),
        payment_id: Uuid::now_v7(),
        order_link: None,
        exchange_rate: None,
    })
}

/// Publishes `event` in a fresh envelope (a new event id, as a replay would have), dated `at`
/// (RFC 3339) when given.
async fn publish_at(system: &System, event: &Event, at: Option<&str>) -> Vec<u8> {
    let mut envelope = Envelope::new("test", event);
    if let Some(at) = at {
        envelope.time = from_json!(at);
    }
    let bytes = envelope.to_bytes();
    system.publish_raw(event.event_type(), &bytes).await;
    bytes
}

async fn publish(system: &System, event: &Event) -> Vec<u8> {
    publish_at(system, event, None).await
}

/// The mails whose subject mentions `needle`.
fn mails_about(system: &System, needle: &str) -> Vec<ReceivedMail> {
    system
        .smtp
        .received()
        .into_iter()
        .filter(|m| m.header("subject").is_some_and(|s| s.contains(needle)))
        .collect()
}

async fn wait_for_mails(system: &System, needle: &str, n: usize) -> Vec<ReceivedMail> {
    eventually(&format!("{n} email(s) about {needle}"), SAGA_TIMEOUT, || async {
        let mails = mails_about(system, needle);
        (mails.len() >= n).then_some(mails)
    })
    .await
}

/// Undoes quoted-printable soft breaks and escapes, so content checks do not depend on the
/// transfer encoding lettre picked.
pub(crate) fn decoded(data: &str) -> String {
    let joined = data.replace("=\n", "");
    let mut out = String::with_capacity(joined.len());
    let mut rest = joined.as_str();
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at + 1..at + 3).and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
            Some(byte) if byte.is_ascii() => {
                out.push(byte as char);
                rest = &rest[at + 3..];
            }
            _ => {
                out.push('=');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Waits until the notifier's inbox is drained and nothing is left to send.
async fn settled(system: &System) {
    eventually("the notifier to settle", SAGA_TIMEOUT, || async {
        let pending =
            system.count("SELECT count(*) AS n FROM notifier.notifications WHERE status = 'pending'").await;
        let unpublished = system.count("SELECT count(*) AS n FROM notifier.outbox").await;
        (pending == 0 && unpublished == 0 && system.queue_depth("notifier.inbox").await == 0).then_some(())
    })
    .await;
}

/// Waits until exactly `expected` such events have reached the spy queue (they may still be on
/// their way when the notifier has settled), then returns them.
async fn events_exactly(system: &System, event_type: &str, order_id: Uuid, expected: usize) -> Vec<Value> {
    eventually(&format!("{expected} {event_type} for {order_id}"), SAGA_TIMEOUT, || async {
        let events = events_of(system, event_type, order_id);
        (events.len() == expected).then_some(events)
    })
    .await
}

fn events_of(system: &System, event_type: &str, order_id: Uuid) -> Vec<Value> {
    let id = order_id.to_string();
    system.events().into_iter().filter(|e| e["type"] == event_type && e["data"]["order_id"] == id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_invoice_arrives_as_text_with_an_html_alternative_and_an_sms_only_with_a_phone() {
    let system = System::start().await;
    let (with_phone, without_phone) = (Uuid::now_v7(), Uuid::now_v7());
    publish(&system, &confirmed(with_phone, customer("Ada & <Co>", Some("+14155550123")), "USD", "12.50"))
        .await;
    publish(&system, &confirmed(without_phone, customer("Ada Lovelace", None), "USD", "3.00")).await;

    let mail = wait_for_mails(&system, &with_phone.to_string(), 1).await.remove(0);
    assert_eq!(mail.to, ["ada@example.com"]);
    assert_eq!(mail.header("subject").unwrap(), format!("Your invoice for order {with_phone}"));
    let data = decoded(&mail.data);
    assert!(data.contains("multipart/alternative"), "{data}");
    let plain = data.find("Content-Type: text/plain").expect("a text/plain part");
    let html = data.find("Content-Type: text/html").expect("a text/html part");
    assert!(plain < html, "the HTML alternative comes last, as the preferred form");
    let (text_part, html_part) = (&data[plain..html], &data[html..]);
    for expected in ["INVOICE", &format!("Order ID: {with_phone}"), "Name: Ada & <Co>", "TOTAL"] {
        assert!(text_part.contains(expected), "text lacks `{expected}`:\n{text_part}");
    }
    for expected in ["<h1>Invoice</h1>", "Name: Ada &amp; &lt;Co&gt;", "<td>Cables &amp; Adapters</td>"] {
        assert!(html_part.contains(expected), "HTML lacks `{expected}`:\n{html_part}");
    }
    // Both orders' emails first: "settled" alone cannot see a delivery still being handled.
    wait_for_mails(&system, &without_phone.to_string(), 1).await;
    settled(&system).await;
    let (status, body) = system.admin_get(&format!("/api/v1/notifications?order_id={with_phone}")).await;
    assert_eq!(status, 200, "{body}");
    let mut rows: Vec<(String, String)> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["channel"].as_str().unwrap().to_owned(), n["status"].as_str().unwrap().to_owned()))
        .collect();
    rows.sort();
    // No SMS provider is configured: the text was only logged, and says so.
    assert_eq!(rows, [("email".into(), "sent".into()), ("sms".into(), "logged".into())]);
    let (_, body) = system.admin_get(&format!("/api/v1/notifications?order_id={without_phone}")).await;
    assert_eq!(body["items"].as_array().unwrap().len(), 1, "no phone, no SMS: {body}");
    assert_eq!(body["items"][0]["status"], "sent");
    events_exactly(&system, "notification.sent", with_phone, 1).await;
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_event_three_times_a_replay_and_two_notifiers_send_each_invoice_once() {
    let mut system = System::start().await;
    system.start_notifier(|_| {}).await;
    let orders: Vec<Uuid> = (0..8).map(|_| Uuid::now_v7()).collect();
    for order_id in &orders {
        let event = confirmed(*order_id, customer("Ada Lovelace", None), "USD", "9.99");
        let bytes = publish(&system, &event).await;
        system.publish_raw("order.confirmed", &bytes).await;
        system.publish_raw("order.confirmed", &bytes).await;
        publish(&system, &event).await; // a replay under a new event id
    }
    for order_id in &orders {
        wait_for_mails(&system, &order_id.to_string(), 1).await;
    }
    settled(&system).await;
    for order_id in &orders {
        assert_eq!(mails_about(&system, &order_id.to_string()).len(), 1, "one email for {order_id}");
        events_exactly(&system, "notification.sent", *order_id, 1).await;
    }
    assert_eq!(system.smtp.received().len(), orders.len());
    assert_eq!(system.count("SELECT count(*) AS n FROM notifier.notifications").await, orders.len() as i64);
    system.finish().await;
}

/// The id of the only notification of `order_id`.
async fn notification_of(system: &System, order_id: Uuid) -> Value {
    eventually("the notification to be recorded", SAGA_TIMEOUT, || async {
        let (_, body) = system.admin_get(&format!("/api/v1/notifications?order_id={order_id}")).await;
        body["items"].as_array().and_then(|items| items.first().cloned())
    })
    .await
}

async fn attempts(system: &System, id: &str) -> Vec<(String, Option<String>)> {
    let (status, body) = system.admin_get(&format!("/api/v1/notifications/{id}")).await;
    assert_eq!(status, 200, "{body}");
    let history = body["attempt_history"].as_array().unwrap();
    history
        .iter()
        .map(|a| (a["outcome"].as_str().unwrap().to_owned(), a["error"].as_str().map(str::to_owned)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_email_goes_out_after_retries_once_the_smtp_server_is_back() {
    let system = System::start().await;
    system.smtp.stop().await;
    let order_id = Uuid::now_v7();
    publish(&system, &confirmed(order_id, customer("Ada Lovelace", None), "USD", "5.00")).await;
    let id = notification_of(&system, order_id).await["id"].as_str().unwrap().to_owned();
    eventually("a failed attempt", SAGA_TIMEOUT, || async {
        (!attempts(&system, &id).await.is_empty()).then_some(())
    })
    .await;
    system.smtp.resume().await.unwrap();

    wait_for_mails(&system, &order_id.to_string(), 1).await;
    settled(&system).await;
    let history = attempts(&system, &id).await;
    assert_eq!(history.last().map(|a| a.0.as_str()), Some("sent"), "{history:?}");
    assert!(
        history.len() >= 2
            && history[..history.len() - 1]
                .iter()
                .all(|(outcome, error)| outcome == "retry" && error.is_some()),
        "{history:?}"
    );
    assert_eq!(mails_about(&system, &order_id.to_string()).len(), 1);
    assert!(events_of(&system, "notification.failed", order_id).is_empty());
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_permanent_rejection_fails_at_once_is_announced_and_retry_failed_sends_it_once() {
    let system = System::start().await;
    system.smtp.fail_with(Some(550));
    let order_id = Uuid::now_v7();
    publish(&system, &confirmed(order_id, customer("Ada Lovelace", None), "USD", "5.00")).await;
    let failed = eventually("the notification.failed event", SAGA_TIMEOUT, || async {
        events_of(&system, "notification.failed", order_id).pop()
    })
    .await;
    assert!(failed["data"]["error"].as_str().unwrap().contains("550"), "{failed}");
    let notification = notification_of(&system, order_id).await;
    let id = notification["id"].as_str().unwrap().to_owned();
    assert_eq!(notification["status"], "failed");
    let history = attempts(&system, &id).await;
    assert_eq!(history.len(), 1, "a 5xx is not retried: {history:?}");
    assert!(history[0].0 == "failed" && history[0].1.as_deref().unwrap().contains("550"), "{history:?}");
    assert!(system.smtp.received().is_empty());

    system.smtp.fail_with(None);
    let (status, body) = system.admin_post("/api/v1/notifications/retry-failed", &json!({})).await;
    assert_eq!((status, body), (200, json!({"retried": 1})));
    wait_for_mails(&system, &order_id.to_string(), 1).await;
    settled(&system).await;
    let (status, body) =
        system.admin_post("/api/v1/notifications/retry-failed", &json!({"limit": 1000})).await;
    assert_eq!((status, body), (200, json!({"retried": 0})), "a sent notification never moves");
    let (status, body) = system.admin_post(&format!("/api/v1/notifications/{id}/retry"), &json!({})).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("not_failed")));
    let (status, _) = system.admin_post("/api/v1/notifications/retry-failed", &json!({"limit": 1001})).await;
    assert_eq!(status, 422);
    let outcomes: Vec<String> = attempts(&system, &id).await.into_iter().map(|a| a.0).collect();
    assert_eq!(outcomes, ["failed", "sent"], "earlier attempts are kept");
    assert_eq!(mails_about(&system, &order_id.to_string()).len(), 1);
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transient_rejections_give_up_after_the_last_attempt_and_the_cli_retries_them() {
    let system = System::start().await;
    system.smtp.fail_with(Some(451));
    let order_id = Uuid::now_v7();
    publish(&system, &confirmed(order_id, customer("Ada Lovelace", None), "USD", "5.00")).await;
    let failed = eventually("the notification.failed event", SAGA_TIMEOUT, || async {
        events_of(&system, "notification.failed", order_id).pop()
    })
    .await;
    assert!(failed["data"]["error"].as_str().unwrap().starts_with("gave up after 4 attempts"), "{failed}");
    let id = notification_of(&system, order_id).await["id"].as_str().unwrap().to_owned();
    let outcomes: Vec<String> = attempts(&system, &id).await.into_iter().map(|a| a.0).collect();
    assert_eq!(outcomes, ["retry", "retry", "retry", "failed"], "3 delays, 4 attempts");

    system.smtp.fail_with(None);
    let mut settings = notifier::settings::Settings::load().unwrap();
    settings.common.database_url = platform::settings::Secret::new(system.db.url_for("notifier"));
    let request = notifier::retry::RetryFailed {
        since: Some(from_json!("2026-01-01T00:00:00Z")),
        ..Default::default()
    };
    assert_eq!(notifier::retry::run_cli(&settings, &request).await.unwrap(), 1);
    wait_for_mails(&system, &order_id.to_string(), 1).await;
    settled(&system).await;
    assert_eq!(notifier::retry::run_cli(&settings, &request).await.unwrap(), 0);
    assert_eq!(mails_about(&system, &order_id.to_string()).len(), 1);
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancellation_and_refund_notices_are_sent_once_each() {
    let system = System::start().await;
    let order_id = Uuid::now_v7();
    let cancelled = Event::OrderCancelled(OrderCancelled {
        order_id,
        customer: customer("Ada Lovelace", None),
        previous_status: "confirmed".parse().unwrap(),
        cancelled_by: CancelledBy::Customer,
        currency: "EUR".parse().unwrap(),
        total_amount: "42.00".parse().unwrap(),
        lines: vec![],
    });
    let refunded = Event::PaymentRefunded(PaymentRefunded {
        order_id,
        payment_id: Uuid::now_v7(),
        refund_id: Uuid::now_v7(),
        amount: "42.00".parse().unwrap(),
        currency: "EUR".parse().unwrap(),
    });
    for event in [&cancelled, &refunded, &cancelled, &refunded] {
        publish(&system, event).await;
    }
    let mails = wait_for_mails(&system, &order_id.to_string(), 2).await;
    settled(&system).await;
    let mut subjects: Vec<String> = mails.iter().map(|m| m.header("subject").unwrap()).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [format!("Your order {order_id} has been cancelled"), format!("Your refund for order {order_id}")]
    );
    let refund = mails.iter().find(|m| m.header("subject").unwrap().contains("refund")).unwrap();
    assert!(decoded(&refund.data).contains("We have refunded 42.00 EUR"), "{}", refund.data);
    assert_eq!(mails_about(&system, &order_id.to_string()).len(), 2);
    // Both hand-published payment.refunded reach a gateway that never had the order.
    system.finish_with(|e| e.expect_dead_letters("order-api.inbox.dlq", 2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_daily_summary_reports_one_day_once_even_from_two_replicas() {
    let system = System::start().await;
    let (noon, next_day) = ("2026-11-21T12:00:00Z", "2026-11-22T00:00:01Z");
    let failed = |reason| {
        Event::OrderFailed(OrderFailed {
            order_id: Uuid::now_v7(),
            customer: customer("A", None),
            reason,
            lines: vec![],
        })
    };
    let events = [
        (confirmed(Uuid::now_v7(), customer("A", None), "USD", "10.00"), noon),
        (confirmed(Uuid::now_v7(), customer("A", None), "USD", "2.50"), noon),
        (confirmed(Uuid::now_v7(), customer("A", None), "EUR", "7.00"), noon),
        (confirmed(Uuid::now_v7(), customer("A", None), "USD", "99.00"), next_day),
        (failed(FailureReason::OutOfStock), noon),
        (failed(FailureReason::OutOfStock), noon),
        (failed(FailureReason::PaymentDeclined), noon),
    ];
    for (event, at) in &events {
        publish_at(&system, event, Some(at)).await;
    }
    eventually("the ledger to learn every order", SAGA_TIMEOUT, || async {
        (system.count("SELECT count(*) AS n FROM notifier.order_ledger").await == events.len() as i64)
            .then_some(())
    })
    .await;

    let pool = platform::db::pool(&system.db.url_for("notifier"), 4).unwrap();
    let mut settings = notifier::settings::Settings::load().unwrap();
    settings.smtp_url = Some(platform::settings::Secret::new(system.smtp.url()));
    let mailer = notifier::mailer::Mailer::from_settings(&settings).unwrap();
    let admins = vec!["ops@example.com".to_owned(), "boss@example.com".to_owned()];
    let (first, second) = tokio::join!(
        send_for_day(&pool, &mailer, &admins, from_json!("2026-11-21")),
        send_for_day(&pool, &mailer, &admins, from_json!("2026-11-21"))
    );
    let mut outcomes = [first.unwrap(), second.unwrap()];
    let sent = SummaryOutcome::Sent { delivered: 2, rejected: 0, failed: 0 };
    outcomes.sort_by_key(|o| *o != sent);
    assert_eq!(outcomes[0], sent, "{outcomes:?}");
    assert_ne!(outcomes[1], sent, "{outcomes:?}");
    assert_eq!(
        send_for_day(&pool, &mailer, &admins, from_json!("2026-11-21")).await.unwrap(),
        SummaryOutcome::AlreadySent
    );

    let summaries = mails_about(&system, "Sales summary for 2026-11-21");
    let mut recipients: Vec<String> = summaries.iter().flat_map(|m| m.to.clone()).collect();
    recipients.sort();
    assert_eq!(recipients, ["boss@example.com", "ops@example.com"], "one email per admin, once");
    let body = decoded(&summaries[0].data);
    for expected in [
        "Orders confirmed: 3",
        "Orders failed: 3",
        "EUR 7.00 (1 orders)",
        "USD 12.50 (2 orders)",
        "out_of_stock: 2",
        "payment_declined: 1",
    ] {
        assert!(body.contains(expected), "summary lacks `{expected}`:\n{body}");
    }
    system.finish().await;
}
