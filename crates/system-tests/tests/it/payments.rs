//! Payments end to end: every simulated outcome, provider callbacks, the grace period across
//! two replicas, voids and refunds on cancellation.

use crate::support::{SAGA_TIMEOUT, System};
use contracts::events::{CancelledBy, Customer, OrderCancelled, PaymentRequested};
use contracts::{Amount, Currency, Envelope, Event};
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use testkit::eventually;
use uuid::Uuid;

async fn payment_until(system: &System, order_id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let path = format!("/api/v1/orders/{order_id}/payment");
    eventually(what, SAGA_TIMEOUT, || {
        let (path, done) = (path.clone(), &done);
        async move {
            let (status, body) = system.admin_get(&path).await;
            (status == 200 && done(&body)).then_some(body)
        }
    })
    .await
}

async fn payment_status(system: &System, order_id: &str, status: &str) -> Value {
    payment_until(system, order_id, &format!("the payment to be {status}"), |p| p["status"] == status).await
}

async fn place(system: &System, product: Uuid, quantity: i64, method: &str) -> String {
    let (status, order) = system.order(&[(product, quantity)], Some(method)).await;
    assert_eq!(status, 201, "{order}");
    order["id"].as_str().unwrap().to_owned()
}

async fn cancel(system: &System, order_id: &str) {
    let path = format!("/api/v1/orders/{order_id}/cancel");
    let (status, body) = system.send_as(&system.admin_token, reqwest::Method::POST, &path, None).await;
    assert_eq!(status, 200, "{body}");
}

async fn stock(system: &System, product: Uuid) -> (i64, i64) {
    let view = system.product_view(product).await;
    (view["stock"].as_i64().unwrap(), view["available"].as_i64().unwrap())
}

async fn stock_becomes(system: &System, product: Uuid, expected: (i64, i64)) {
    eventually("the stock to settle", SAGA_TIMEOUT, || async move {
        (stock(system, product).await == expected).then_some(())
    })
    .await;
}

fn events_of(system: &System, order_id: &str, event_type: &str) -> Vec<Value> {
    system.events().into_iter().filter(|e| e["type"] == event_type && e["subject"] == order_id).collect()
}

fn history(payment: &Value) -> Vec<String> {
    payment["history"].as_array().unwrap().iter().map(|h| h["to"].as_str().unwrap().to_owned()).collect()
}

/// Stripe's scheme, written again from its documentation: hex HMAC-SHA256 of `t.body`.
fn stripe_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

fn provider_event(id: &str, event_type: &str, intent: &str, status: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"id": id, "object": "event", "type": event_type, "created": 1,
        "data": {"object": {"id": intent, "object": "payment_intent", "status": status}}}))
    .unwrap()
}

async fn post_callback(system: &System, base: &str, signature: Option<String>, body: &[u8]) -> (u16, Value) {
    let mut request = system.http.post(format!("{base}/payments/callbacks/simulated")).body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("stripe-signature", signature);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn card_outcomes_confirm_or_fail_the_order_with_their_reason_and_stock_follows() {
    let system = System::start().await;
    let product = system.product("CARD-OUTCOMES", "25.00", 10).await;
    let ok = place(&system, product, 1, "pm_card_ok").await;
    let declined = place(&system, product, 2, "pm_card_declined").await;
    let poor = place(&system, product, 3, "pm_card_insufficient_funds").await;
    assert_eq!(system.terminal(&ok).await["status"], "confirmed");
    for (id, reason, code) in [
        (&declined, "payment_declined", "card_declined"),
        (&poor, "insufficient_funds", "insufficient_funds"),
    ] {
        let order = system.terminal(id).await;
        assert_eq!(
            (order["status"].as_str(), order["failure_reason"].as_str()),
            (Some("failed"), Some(reason))
        );
        let payment = payment_status(&system, id, "failed").await;
        assert_eq!(payment["failure_code"], code);
        assert!(payment["decline_code"].is_string(), "{payment}");
    }
    let paid = payment_status(&system, &ok, "succeeded").await;
    assert_eq!(history(&paid), ["pending", "processing", "succeeded"]);
    assert_eq!(paid["amount"], "25.00");
    let keys: Vec<&str> =
        paid["attempts"].as_array().unwrap().iter().filter_map(|a| a["idempotency_key"].as_str()).collect();
    assert!(
        keys.iter().all(|k| k.starts_with(&format!("pay_{}_1", paid["id"].as_str().unwrap()))),
        "{keys:?}"
    );
    stock_becomes(&system, product, (9, 9)).await;
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flaky_provider_is_retried_with_backoff_until_the_charge_succeeds_once() {
    let system = System::start().await;
    let product = system.product("FLAKY", "10.00", 5).await;
    let id = place(&system, product, 1, "pm_card_flaky").await;
    assert_eq!(system.terminal(&id).await["status"], "confirmed");
    let payment = payment_status(&system, &id, "succeeded").await;
    let outcomes: Vec<&str> =
        payment["attempts"].as_array().unwrap().iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == "error").count(), 2, "{outcomes:?}");
    assert_eq!(system.count("SELECT count(*) AS n FROM payment.sim_intents").await, 1);
    assert_eq!(system.count("SELECT confirm_calls::bigint AS n FROM payment.sim_intents").await, 3);
    assert_eq!(events_of(&system, &id, "payment.succeeded").len(), 1);
    stock_becomes(&system, product, (4, 4)).await;
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_waiting_on_the_customer_is_completed_or_failed_through_the_simulator() {
    let system = System::start().await;
    let product = system.product("3DS", "40.00", 10).await;
    let completed = place(&system, product, 1, "pm_card_requires_action").await;
    let abandoned = place(&system, product, 2, "pm_card_requires_action").await;
    for (id, action) in [(&completed, "complete"), (&abandoned, "fail")] {
        let payment = payment_status(&system, id, "requires_action").await;
        let path = format!("/api/v1/payments/simulator/{}/{action}", payment["id"].as_str().unwrap());
        // A guest order: no customer owns it, so an admin acts for the customer.
        let (status, body) = system.admin_post(&path, &json!({})).await;
        assert_eq!(status, 200, "{body}");
        let (again, _) = system.admin_post(&path, &json!({})).await;
        assert_eq!(again, 409, "a second customer action finds nothing waiting");
    }
    assert_eq!(system.terminal(&completed).await["status"], "confirmed");
    let failed = system.terminal(&abandoned).await;
    assert_eq!(
        (failed["status"].as_str(), failed["failure_reason"].as_str()),
        (Some("failed"), Some("payment_failed"))
    );
    let paid = payment_status(&system, &completed, "succeeded").await;
    assert_eq!(history(&paid), ["pending", "processing", "requires_action", "succeeded"]);
    assert_eq!(paid["provider_events"][0]["outcome"], "applied");
    stock_becomes(&system, product, (9, 9)).await;
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unanswered_action_fails_after_the_grace_period_once_across_two_replicas() {
    let mut system = System::start().await;
    system.start_payment().await;
    let product = system.product("NO-CALLBACK", "15.00", 3).await;
    let id = place(&system, product, 2, "pm_card_no_callback").await;
    payment_status(&system, &id, "requires_action").await;
    let order = system.terminal(&id).await;
    assert_eq!(
        (order["status"].as_str(), order["failure_reason"].as_str()),
        (Some("failed"), Some("payment_timeout"))
    );
    let payment = payment_status(&system, &id, "failed").await;
    assert_eq!(payment["failure_code"], "payment_timeout");
    stock_becomes(&system, product, (3, 3)).await;
    let failed = events_of(&system, &id, "payment.failed");
    assert_eq!(failed.len(), 1, "one expiry, one event: {failed:?}");
    assert_eq!(failed[0]["data"]["code"], "payment_timeout");
    assert_eq!(history(&payment).iter().filter(|s| *s == "failed").count(), 1);
    assert_eq!(system.text("SELECT status AS t FROM payment.sim_intents").await, ["canceled"]);
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callbacks_are_verified_recorded_once_and_never_move_a_payment_backwards() {
    let mut system = System::start().await;
    let payment_url = system.start_payment().await;
    let product = system.product("CALLBACKS", "30.00", 5).await;
    let id = place(&system, product, 1, "pm_card_requires_action").await;
    let payment = payment_status(&system, &id, "requires_action").await;
    let intent = payment["provider_ref"].as_str().unwrap().to_owned();
    let secret = System::PAYMENT_WEBHOOK_SECRET;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let success = provider_event("evt_success", "payment_intent.succeeded", &intent, "succeeded");

    let refused = [
        None,
        Some(stripe_signature("whsec_forged", now, &success)),
        Some(stripe_signature(secret, now - 3600, &success)),
        Some(stripe_signature(secret, now, b"{\"tampered\":true}")),
    ];
    for signature in refused {
        let (status, body) = post_callback(&system, &payment_url, signature, &success).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("invalid_signature")), "{body}");
    }
    assert_eq!(payment_status(&system, &id, "requires_action").await["provider_events"], json!([]));

    let unknown = provider_event("evt_unknown", "charge.dispute.created", &intent, "succeeded");
    let (status, body) =
        post_callback(&system, &payment_url, Some(stripe_signature(secret, now, &unknown)), &unknown).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("ignored")));
    let (status, body) =
        post_callback(&system, &payment_url, Some(stripe_signature(secret, now, &success)), &success).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("applied")));
    let (status, body) =
        post_callback(&system, &payment_url, Some(stripe_signature(secret, now + 1, &success)), &success)
            .await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("duplicate")));
    for (event_id, kind, state) in [
        ("evt_late_action", "payment_intent.requires_action", "requires_action"),
        ("evt_late_processing", "payment_intent.processing", "processing"),
        ("evt_late_failure", "payment_intent.payment_failed", "requires_payment_method"),
    ] {
        let stale = provider_event(event_id, kind, &intent, state);
        let (status, body) =
            post_callback(&system, &payment_url, Some(stripe_signature(secret, now, &stale)), &stale).await;
        assert_eq!((status, body["outcome"].as_str()), (200, Some("ignored")), "{kind}");
    }
    let stranger = provider_event("evt_stranger", "payment_intent.succeeded", "pi_unknown", "succeeded");
    let (status, body) =
        post_callback(&system, &payment_url, Some(stripe_signature(secret, now, &stranger)), &stranger).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("unknown_payment")));

    assert_eq!(system.terminal(&id).await["status"], "confirmed");
    let paid = payment_status(&system, &id, "succeeded").await;
    assert_eq!(paid["provider_events"].as_array().unwrap().len(), 5, "{paid}");
    assert_eq!(history(&paid), ["pending", "processing", "requires_action", "succeeded"]);
    assert_eq!(events_of(&system, &id, "payment.succeeded").len(), 1);
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_a_confirmed_order_refunds_it_in_full() {
    let system = System::start().await;
    let product = system.product("REFUND", "12.50", 4).await;
    let id = place(&system, product, 2, "pm_card_ok").await;
    assert_eq!(system.terminal(&id).await["status"], "confirmed");
    cancel(&system, &id).await;
    let payment = payment_status(&system, &id, "refunded").await;
    assert_eq!(
        (payment["refunded_amount"].as_str(), payment["refunds"][0]["amount"].as_str()),
        (Some("25.00"), Some("25.00"))
    );
    assert_eq!(history(&payment), ["pending", "processing", "succeeded", "refunded"]);
    eventually("payment.refunded", SAGA_TIMEOUT, || async {
        (events_of(&system, &id, "payment.refunded").len() == 1).then_some(())
    })
    .await;
    assert_eq!(system.count("SELECT count(*) AS n FROM payment.sim_refunds").await, 1);
    stock_becomes(&system, product, (4, 4)).await;
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_while_the_customer_is_asked_to_act_voids_the_payment() {
    let system = System::start().await;
    let product = system.product("VOID", "8.00", 2).await;
    let id = place(&system, product, 1, "pm_card_requires_action").await;
    let waiting = payment_status(&system, &id, "requires_action").await;
    cancel(&system, &id).await;
    let voided = payment_status(&system, &id, "voided").await;
    assert_eq!(history(&voided), ["pending", "processing", "requires_action", "voided"]);
    assert_eq!(system.text("SELECT status AS t FROM payment.sim_intents").await, ["canceled"]);
    let path = format!("/api/v1/payments/simulator/{}/complete", waiting["id"].as_str().unwrap());
    assert_eq!(system.admin_post(&path, &json!({})).await.0, 409, "nothing left to complete");
    eventually("payment.voided", SAGA_TIMEOUT, || async {
        (events_of(&system, &id, "payment.voided").len() == 1).then_some(())
    })
    .await;
    stock_becomes(&system, product, (2, 2)).await;
    system.finish().await;
}

fn envelope(event: Event) -> Vec<u8> {
    Envelope::new("test", &event).to_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancellation_before_the_request_voids_without_charging_and_repeats_create_nothing() {
    let system = System::start().await;
    let order_id = Uuid::now_v7();
    let customer = Customer { name: "Ada".into(), email: "ada@example.com".into(), phone: None };
    let cancelled = OrderCancelled {
        order_id,
        customer,
        previous_status: "processing".parse().unwrap(),
        cancelled_by: CancelledBy::Customer,
        currency: "USD".parse::<Currency>().unwrap(),
        total_amount: "9.00".parse::<Amount>().unwrap(),
        lines: vec![],
    };
    system.publish_raw("order.cancelled", &envelope(Event::OrderCancelled(cancelled))).await;
    eventually("the cancellation to be remembered", SAGA_TIMEOUT, || async {
        (system
            .count(&format!(
                "SELECT count(*) AS n FROM payment.order_cancellations WHERE order_id = '{order_id}'"
            ))
            .await
            == 1)
            .then_some(())
    })
    .await;
    let request = PaymentRequested {
        order_id,
        amount: "9.00".parse().unwrap(),
        currency: "USD".parse().unwrap(),
        payment_method: "pm_card_ok".into(),
        customer_id: None,
    };
    for _ in 0..2 {
        system.publish_raw("payment.requested", &envelope(Event::PaymentRequested(request.clone()))).await;
    }
    let id = order_id.to_string();
    eventually("payment.voided", SAGA_TIMEOUT, || async {
        (events_of(&system, &id, "payment.voided").len() == 1).then_some(())
    })
    .await;
    assert_eq!(
        system.text(&format!("SELECT status AS t FROM payment.payments WHERE order_id = '{order_id}'")).await,
        ["voided"]
    );
    assert_eq!(system.count("SELECT count(*) AS n FROM payment.sim_intents").await, 0, "nothing charged");
    assert_eq!(
        system.count("SELECT count(*) AS n FROM payment.inbox WHERE event_type = 'payment.requested'").await,
        2
    );
    // The hand-made order's payment.voided reaches a gateway that never had the order.
    system.finish_with(|e| e.expect_dead_letters("order-api.inbox.dlq", 1)).await;
}
