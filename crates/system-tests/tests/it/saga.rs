//! The saga end to end through the gateway.

use crate::support::System;
use base64::Engine;
use hmac::{KeyInit, Mac};
use serde_json::json;

/// A second, independent implementation of the Standard Webhooks check, written from the
/// spec: HMAC-SHA256 over `id.timestamp.body` with the base64-decoded `whsec_` secret.
fn standard_webhook_signature_matches(
    secret: &str,
    id: &str,
    timestamp: &str,
    body: &[u8],
    header: &str,
) -> bool {
    let key = base64::engine::general_purpose::STANDARD.decode(secret.trim_start_matches("whsec_")).unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected =
        format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    header.split(' ').any(|candidate| candidate == expected)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_is_confirmed_invoiced_and_announced_by_webhook() {
    let system = System::start().await;
    let (status, endpoint) =
        system.admin_post("/api/v1/webhook-endpoints", &json!({"url": system.receiver.url("/hooks")})).await;
    assert_eq!(status, 201, "{endpoint}");
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));

    let laptop = system.product("LAPTOP-1", "999.99", 50).await;
    let (status, order) = system.order(&[(laptop, 2)], None).await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["status"], "pending");
    assert_eq!(order["total_amount"], "1999.98");
    assert_eq!(order["items"][0]["price_at_purchase"], "999.99");
    assert_eq!(order["items"][0]["subtotal"], "1999.98");
    let id = order["id"].as_str().unwrap().to_owned();

    let done = system
        .order_until(&id, "confirmed, invoiced and announced", |o| {
            o["status"] == "confirmed" && o["invoice_sent"] == true && o["webhook_sent"] == true
        })
        .await;
    let history: Vec<&str> =
        done["status_history"].as_array().unwrap().iter().map(|h| h["status"].as_str().unwrap()).collect();
    assert_eq!(history, ["pending", "processing", "confirmed"]);
    assert_eq!(done["failure_reason"], serde_json::Value::Null);

    let product = system.product_view(laptop).await;
    assert_eq!((product["stock"].as_i64(), product["available"].as_i64()), (Some(48), Some(48)));

    let mails = system.smtp.received();
    assert_eq!(mails.len(), 1, "exactly one email");
    assert_eq!(mails[0].to, ["ada@example.com"]);
    let text = mails[0].data.replace("=\n", "");
    for expected in [
        "INVOICE",
        &format!("Order ID: {id}"),
        "Name: Ada Lovelace",
        "Email: ada@example.com",
        "Item                           Qty   Price      Subtotal",
        "Product LAPTOP-1               2     $999.99    $1999.98",
        "TOTAL                                          $1999.98 USD",
        "Thank you for your order!",
    ] {
        assert!(text.contains(expected), "invoice lacks `{expected}`:\n{text}");
    }

    let hooks = system.receiver.received();
    let confirmed = hooks
        .iter()
        .find(|h| serde_json::from_slice::<serde_json::Value>(&h.body).unwrap()["type"] == "order.confirmed")
        .expect("an order.confirmed webhook");
    assert!(standard_webhook_signature_matches(
        &secret,
        &confirmed.headers["webhook-id"],
        &confirmed.headers["webhook-timestamp"],
        &confirmed.body,
        &confirmed.headers["webhook-signature"],
    ));
    let forged = [confirmed.body.as_slice(), b" "].concat();
    assert!(!standard_webhook_signature_matches(
        &secret,
        &confirmed.headers["webhook-id"],
        &confirmed.headers["webhook-timestamp"],
        &forged,
        &confirmed.headers["webhook-signature"],
    ));

    check_published_events_against_schemas(&system).await;
    system.finish().await;
}

async fn check_published_events_against_schemas(system: &System) {
    let expected = [
        "product.upserted",
        "order.created",
        "stock.reserved",
        "payment.requested",
        "payment.succeeded",
        "order.confirmed",
        "stock.committed",
        "notification.sent",
        "webhook.delivered",
    ];
    // The spy's queue is one more consumer: it may lag the others a little.
    let events =
        testkit::eventually("every saga event on the spy queue", crate::support::SAGA_TIMEOUT, || async {
            let events = system.events();
            let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
            expected.iter().all(|t| types.contains(t)).then_some(events.clone())
        })
        .await;
    let root = testkit::repo_root().join("proto-schemas");
    for event in &events {
        let kind = event["type"].as_str().unwrap();
        let schema_path = root.join(format!("{kind}.v1.json"));
        let schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&schema_path).unwrap()).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = validator.iter_errors(event).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{kind} does not match {}: {errors:?}\n{event}", schema_path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_beyond_stock_fails_and_reserves_nothing() {
    let system = System::start().await;
    let scarce = system.product("SCARCE", "10.00", 1).await;
    let plenty = system.product("PLENTY", "5.00", 10).await;
    let (status, order) = system.order(&[(plenty, 2), (scarce, 2)], None).await;
    assert_eq!(status, 201);
    let done = system.terminal(order["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["failure_reason"], "out_of_stock");
    let history: Vec<&str> =
        done["status_history"].as_array().unwrap().iter().map(|h| h["status"].as_str().unwrap()).collect();
    assert_eq!(history, ["pending", "failed"]);
    for (product, stock) in [(scarce, 1), (plenty, 10)] {
        let view = system.product_view(product).await;
        assert_eq!(
            (view["stock"].as_i64(), view["available"].as_i64()),
            (Some(stock), Some(stock)),
            "all or nothing"
        );
    }
    assert_eq!(system.count("SELECT count(*) AS n FROM inventory.reservations").await, 0);
    system
        .order_until(order["id"].as_str().unwrap(), "the failure notice", |_| {
            system.smtp.received().len() == 1
        })
        .await;
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_declined_payment_fails_the_order_and_gives_the_stock_back() {
    let system = System::start().await;
    let phone = system.product("PHONE", "300.00", 5).await;
    let (_, order) = system.order(&[(phone, 2)], Some("pm_card_declined")).await;
    let id = order["id"].as_str().unwrap();
    let done = system.terminal(id).await;
    assert_eq!(done["status"], "failed");
    assert_eq!(done["failure_reason"], "payment_declined");
    let history: Vec<&str> =
        done["status_history"].as_array().unwrap().iter().map(|h| h["status"].as_str().unwrap()).collect();
    assert_eq!(history, ["pending", "processing", "failed"]);
    testkit::eventually("the reservation to be released", crate::support::SAGA_TIMEOUT, || async {
        let view = system.product_view(phone).await;
        (view["available"].as_i64() == Some(5)).then_some(())
    })
    .await;
    assert_eq!(system.product_view(phone).await["stock"].as_i64(), Some(5));
    assert_eq!(system.text("SELECT status AS t FROM inventory.reservations").await, ["released"],);
    system.finish().await;
}
