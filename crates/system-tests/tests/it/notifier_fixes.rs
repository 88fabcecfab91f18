//! Issue 10, defect 7, through the public gateway: with no SMS provider configured (the
//! default), a text message used to be recorded and announced as `sent` although it was only
//! logged. Now it is `logged`, the API names the provider of every message, and only what
//! really left is announced as `notification.sent`.

use crate::support::{SAGA_TIMEOUT, System};
use contracts::events::{Customer, OrderConfirmed, OrderLine};
use contracts::{Envelope, Event};
use serde_json::Value;
use testkit::eventually;
use uuid::Uuid;

fn confirmed(order_id: Uuid) -> Event {
    Event::OrderConfirmed(OrderConfirmed {
        order_id,
        customer: Customer {
            name: "Ada Lovelace".into(),
            email: "ada@example.com".into(),
            phone: Some("+14155550123".into()),
        },
        currency: "JPY".parse().unwrap(),
        lines: vec![OrderLine {
            product_id: Uuid::from_u128(7),
            product_name: "Tea".into(),
            quantity: 2,
            unit_price: "600".parse().unwrap(),
            subtotal: "1200".parse().unwrap(),
        }],
        total_amount: "1200".parse().unwrap(),
        placed_at: serde_json::from_value(serde_json::json!("2026-12-09T09:30:00Z")).unwrap(),
        payment_id: Uuid::now_v7(),
        order_link: None,
        exchange_rate: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notifier_fixes_a_log_only_sms_is_logged_not_sent_and_the_api_names_each_provider() {
    let system = System::start().await;
    let order_id = Uuid::now_v7();
    let event = confirmed(order_id);
    system.publish_raw(event.event_type(), &Envelope::new("test", &event).to_bytes()).await;

    let items: Vec<Value> = eventually("both notifications delivered or logged", SAGA_TIMEOUT, || async {
        let (status, body) = system.admin_get(&format!("/api/v1/notifications?order_id={order_id}")).await;
        assert_eq!(status, 200, "{body}");
        let items = body["items"].as_array().cloned().unwrap_or_default();
        (items.len() == 2 && items.iter().all(|n| n["status"] != "pending")).then_some(items)
    })
    .await;
    let by_channel = |channel: &str| items.iter().find(|n| n["channel"] == channel).cloned().unwrap();
    let (email, sms) = (by_channel("email"), by_channel("sms"));
    assert_eq!(
        (&email["status"], &email["provider"]),
        (&Value::from("sent"), &Value::from("smtp")),
        "{email}"
    );
    assert_eq!((&sms["status"], &sms["provider"]), (&Value::from("logged"), &Value::from("log")), "{sms}");

    let (status, detail) =
        system.admin_get(&format!("/api/v1/notifications/{}", sms["id"].as_str().unwrap())).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["attempt_history"][0]["outcome"], "logged", "{detail}");
    assert_eq!(detail["attempt_history"][0]["provider"], "log", "{detail}");
    let (status, logged) =
        system.admin_get(&format!("/api/v1/notifications?status=logged&order_id={order_id}")).await;
    assert_eq!(status, 200, "{logged}");
    assert_eq!(logged["items"].as_array().map(Vec::len), Some(1), "the status filter knows `logged`");

    // The email's JPY invoice has no cents and no dollar sign.
    let mail = eventually("the invoice email", SAGA_TIMEOUT, || async {
        system.smtp.received().into_iter().find(|m| m.data.contains(&order_id.to_string()))
    })
    .await;
    assert!(!mail.data.contains("$") && !mail.data.contains("1200.00"), "{}", mail.data);

    // Only the email is announced as sent; the logged text is not announced at all.
    let id = order_id.to_string();
    let sent = eventually("the email's notification.sent", SAGA_TIMEOUT, || async {
        let sent: Vec<Value> = system
            .events()
            .into_iter()
            .filter(|e| e["type"] == "notification.sent" && e["data"]["order_id"] == id)
            .collect();
        (!sent.is_empty()).then_some(sent)
    })
    .await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["data"]["channel"], "email");
    eventually("the notifier outbox to drain", SAGA_TIMEOUT, || async {
        (system.count("SELECT count(*) AS n FROM notifier.outbox").await == 0).then_some(())
    })
    .await;
    let sent_events = system
        .events()
        .into_iter()
        .filter(|e| e["type"] == "notification.sent" && e["data"]["order_id"] == id)
        .count();
    assert_eq!(sent_events, 1);
    system.finish().await;
}
