//! The saga's loose ends (issue 10): every event a queue is bound to has a handler case (no dead
//! letters on a good day; `topology.rs` checks the bindings), an order shows the money given back, an order that ends without
//! success never keeps the customer's money, and the inbox does not grow for ever.

use crate::support::{Options, SAGA_TIMEOUT, System};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};
use testkit::eventually;
use uuid::Uuid;

const DEAD_LETTER_QUEUES: [&str; 5] = [
    "order-api.inbox.dlq",
    "inventory.inbox.dlq",
    "payment.inbox.dlq",
    "notifier.inbox.dlq",
    "webhook-dispatcher.inbox.dlq",
];

async fn assert_no_dead_letters(system: &System) {
    for queue in DEAD_LETTER_QUEUES {
        assert_eq!(system.queue_depth(queue).await, 0, "{queue} must be empty on a good day");
    }
}

async fn place(system: &System, product: Uuid, method: &str) -> String {
    let (status, order) = system.order(&[(product, 1)], Some(method)).await;
    assert_eq!(status, 201, "{order}");
    order["id"].as_str().unwrap().to_owned()
}

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

fn history(order: &Value) -> Vec<(String, Option<String>)> {
    order["status_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["status"].as_str().unwrap().to_owned(), h["reason"].as_str().map(str::to_owned)))
        .collect()
}

fn has_entry(order: &Value, status: &str) -> bool {
    history(order).iter().any(|(s, _)| s == status)
}

/// A paid order cancelled: payment refunds, the order shows it (amount and history line), and
/// `payment.refunded` is not dead-lettered at order-api (it was, for every refund).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn saga_ends_a_refund_and_a_void_show_on_the_order_and_nothing_is_dead_lettered() {
    let system = System::start().await;
    let product = system.product("REFUND-SHOWN", "25.00", 5).await;
    let paid = place(&system, product, "pm_card_ok").await;
    system.order_until(&paid, "confirmed", |o| o["status"] == "confirmed").await;
    let waiting = place(&system, product, "pm_card_requires_action").await;
    payment_until(&system, &waiting, "the payment to wait on the customer", |p| {
        p["status"] == "requires_action"
    })
    .await;
    for id in [&paid, &waiting] {
        let (status, body) = system.admin_post(&format!("/api/v1/orders/{id}/cancel"), &json!({})).await;
        assert_eq!(status, 200, "{body}");
    }

    let refunded = system.order_until(&paid, "the refund on the order", |o| has_entry(o, "refunded")).await;
    assert_eq!(refunded["status"], "cancelled", "a refund is a history line, not a status");
    assert_eq!(refunded["refunded_amount"], "25.00");
    let line = history(&refunded).into_iter().find(|(s, _)| s == "refunded").unwrap();
    assert_eq!(line.1.as_deref(), Some("25.00 USD"));

    let voided = system.order_until(&waiting, "the void on the order", |o| has_entry(o, "voided")).await;
    assert_eq!(
        (voided["status"].as_str(), voided["refunded_amount"].as_str()),
        (Some("cancelled"), Some("0.00"))
    );
    let fresh =
        system.admin_get(&format!("/api/v1/orders/{}", place(&system, product, "pm_card_ok").await)).await.1;
    assert_eq!(fresh["refunded_amount"], "0.00", "{fresh}");

    assert_no_dead_letters(&system).await;
    system.finish().await;
}

/// An operator fails a `processing` order whose payment waits on the customer: payment voids
/// it (it used to stay open, and the customer could still pay for a failed order).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn saga_ends_an_admin_failed_order_voids_the_payment_the_customer_was_about_to_complete() {
    let system =
        System::start_with(Options { payment_action_timeout_ms: 120_000, ..Options::default() }).await;
    let product = system.product("ADMIN-FAIL-VOID", "12.00", 3).await;
    let id = place(&system, product, "pm_card_requires_action").await;
    let waiting = payment_until(&system, &id, "the payment to wait on the customer", |p| {
        p["status"] == "requires_action"
    })
    .await;
    let (status, failed) =
        system.admin_post(&format!("/api/v1/admin/orders/{id}/fail"), &json!({"reason": "stuck"})).await;
    assert_eq!((status, failed["failure_reason"].as_str()), (200, Some("expired")), "{failed}");

    let voided = payment_until(&system, &id, "the payment to be voided", |p| p["status"] == "voided").await;
    assert_eq!(voided["refunds"], json!([]), "nothing was charged: {voided}");
    // The customer comes back from 3-D Secure too late: nothing left to pay.
    let complete = format!("/api/v1/payments/simulator/{}/complete", waiting["id"].as_str().unwrap());
    assert_eq!(system.admin_post(&complete, &json!({})).await.0, 409);
    let order = system.order_until(&id, "the void on the order", |o| has_entry(o, "voided")).await;
    assert_eq!(
        (order["status"].as_str(), order["failure_reason"].as_str()),
        (Some("failed"), Some("expired"))
    );
    assert_no_dead_letters(&system).await;
    system.finish().await;
}

/// The customer completes the payment after the order failed and before payment heard of it
/// (held back here by a lock on its cancellation row, which is where `order.failed` lands): the
/// capture is refunded and the order shows it. It used to stay captured for a failed order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn saga_ends_a_payment_completed_after_its_order_failed_is_refunded() {
    let system =
        System::start_with(Options { payment_action_timeout_ms: 120_000, ..Options::default() }).await;
    let product = system.product("LATE-SUCCESS", "9.50", 3).await;
    let id = place(&system, product, "pm_card_requires_action").await;
    let waiting = payment_until(&system, &id, "the payment to wait on the customer", |p| {
        p["status"] == "requires_action"
    })
    .await;

    // Hold payment's handling of `order.failed`: its insert waits on this uncommitted row.
    let mut blocker = AsyncPgConnection::establish(&system.db.admin_url()).await.unwrap();
    diesel::sql_query("BEGIN").execute(&mut blocker).await.unwrap();
    diesel::sql_query(format!(
        "INSERT INTO payment.order_cancellations (order_id, event_id) VALUES ('{id}', '{}')",
        Uuid::now_v7()
    ))
    .execute(&mut blocker)
    .await
    .unwrap();

    let (status, failed) = system.admin_post(&format!("/api/v1/admin/orders/{id}/fail"), &json!({})).await;
    assert_eq!(status, 200, "{failed}");
    let complete = format!("/api/v1/payments/simulator/{}/complete", waiting["id"].as_str().unwrap());
    let (status, paid) = system.admin_post(&complete, &json!({})).await;
    assert_eq!((status, paid["status"].as_str()), (200, Some("succeeded")), "{paid}");
    eventually("payment.succeeded published", SAGA_TIMEOUT, || async {
        system
            .events()
            .iter()
            .any(|e| e["type"] == "payment.succeeded" && e["subject"] == id.as_str())
            .then_some(())
    })
    .await;
    diesel::sql_query("ROLLBACK").execute(&mut blocker).await.unwrap();

    let refunded =
        payment_until(&system, &id, "the late capture to be refunded", |p| p["status"] == "refunded").await;
    assert_eq!(refunded["refunded_amount"], "9.50", "{refunded}");
    let order = system.order_until(&id, "the refund on the order", |o| has_entry(o, "refunded")).await;
    assert_eq!(
        (order["status"].as_str(), order["failure_reason"].as_str(), order["refunded_amount"].as_str()),
        (Some("failed"), Some("expired"), Some("9.50"))
    );
    assert_no_dead_letters(&system).await;
    system.finish().await;
}

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    event_id: Uuid,
}

/// Old inbox rows go, in bounded batches; recent ones stay and still recognise a redelivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn saga_ends_the_inbox_is_pruned_past_its_retention_and_recent_rows_still_dedup() {
    let system = System::start().await;
    let pool = platform::db::pool(&system.db.url_for("order_api"), 2).unwrap();
    let mut conn = pool.get().await.unwrap();
    let (old, recent): (Vec<Uuid>, Vec<Uuid>) =
        ((0..3).map(|_| Uuid::now_v7()).collect(), (0..2).map(|_| Uuid::now_v7()).collect());
    for (ids, age) in [(&old, "200 hours"), (&recent, "100 hours")] {
        for event_id in ids {
            diesel::sql_query(format!(
                "INSERT INTO inbox (event_id, event_type, handled_at) \
                 VALUES ('{event_id}', 'product.upserted', now() - interval '{age}')"
            ))
            .execute(&mut conn)
            .await
            .unwrap();
        }
    }
    let retention = std::time::Duration::from_secs(168 * 3600);
    // One bounded batch takes at most what it is allowed.
    assert_eq!(messaging::inbox::prune(&mut conn, retention, 2).await.unwrap(), 2);
    drop(conn);
    assert_eq!(messaging::inbox::prune_once(&pool, retention).await.unwrap(), 1);
    assert_eq!(messaging::inbox::prune_once(&pool, retention).await.unwrap(), 0);

    let mut conn = pool.get().await.unwrap();
    let left: Vec<Uuid> = diesel::sql_query("SELECT event_id FROM inbox")
        .load::<Id>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.event_id)
        .collect();
    assert!(recent.iter().all(|id| left.contains(id)), "recent rows stay");
    assert!(old.iter().all(|id| !left.contains(id)), "old rows go");
    for event_id in &recent {
        assert!(
            !messaging::inbox::record(&mut conn, *event_id, "product.upserted").await.unwrap(),
            "a duplicate"
        );
    }
    drop(conn);
    system.finish().await;
}

/// A retention shorter than the retry schedule would forget an event while it may still come
/// back: refused at start-up, naming the setting.
#[test]
fn saga_ends_an_inbox_retention_shorter_than_the_retries_is_refused() {
    let defaults = chassis::CommonSettings::defaults("order_api", 8080);
    let pairs: Vec<(&str, &str)> = defaults.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let settings: chassis::CommonSettings = platform::settings::load(&pairs).unwrap();
    assert_eq!(settings.inbox_retention_hours, 168, "a week by default");
    assert!(settings.validate().is_ok());
    let short = chassis::CommonSettings {
        inbox_retention_hours: 1,
        amqp_retry_delays_ms: "3600000,60000".into(),
        ..settings.clone()
    };
    let error = short.validate().unwrap_err().to_string();
    assert!(error.contains("inbox_retention_hours"), "{error}");
    let zero = chassis::CommonSettings { inbox_retention_hours: 0, ..settings };
    assert!(zero.validate().is_err());
}
