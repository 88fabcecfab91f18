//! At-least-once delivery with exactly-once effects, and poison messages.

use crate::support::{SAGA_TIMEOUT, System};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redelivered_events_and_consumers_dying_before_ack_cause_each_effect_once() {
    let system = System::start().await;
    let (status, _) = system
        .admin_post(
            "/api/v1/webhook-endpoints",
            &json!({"url": system.receiver.url("/hooks"), "event_types": ["order.confirmed"]}),
        )
        .await;
    assert_eq!(status, 201);
    let book = system.product("BOOK", "12.50", 10).await;
    // Every consumer on the order path commits its first batch and then dies before acking.
    for hook in
        [&system.hooks.inventory, &system.hooks.payment, &system.hooks.notifier, &system.hooks.webhooks]
    {
        hook.crash_times(1);
    }
    let (_, order) = system.order(&[(book, 3)], None).await;
    let id = order["id"].as_str().unwrap().to_owned();
    system
        .order_until(&id, "confirmed with invoice and webhook", |o| {
            o["status"] == "confirmed" && o["invoice_sent"] == true && o["webhook_sent"] == true
        })
        .await;

    // And the same order.created event delivered twice more, by hand.
    let created = system
        .spy
        .lock()
        .unwrap()
        .iter()
        .find(|bytes| serde_json::from_slice::<serde_json::Value>(bytes).unwrap()["type"] == "order.created")
        .cloned()
        .expect("order.created was published");
    system.publish_raw("order.created", &created).await;
    system.publish_raw("order.created", &created).await;
    testkit::eventually("the duplicates to be consumed", SAGA_TIMEOUT, || async {
        (system.queue_depth("inventory.inbox").await == 0).then_some(())
    })
    .await;

    assert_eq!(system.count("SELECT count(*) AS n FROM inventory.reservations").await, 1, "one reservation");
    assert_eq!(system.product_view(book).await["stock"].as_i64(), Some(7), "reduced once");
    assert_eq!(system.count("SELECT count(*) AS n FROM payment.payments").await, 1, "one charge");
    assert_eq!(system.count("SELECT count(*) AS n FROM notifier.notifications").await, 1);
    assert_eq!(system.smtp.received().len(), 1, "one email");
    assert_eq!(system.count("SELECT count(*) AS n FROM webhooks.deliveries").await, 1);
    let confirmed_hooks = system.receiver.received().len();
    assert_eq!(confirmed_hooks, 1, "one webhook");
    for hook in
        [&system.hooks.inventory, &system.hooks.payment, &system.hooks.notifier, &system.hooks.webhooks]
    {
        assert_eq!(hook.0.load(std::sync::atomic::Ordering::SeqCst), 0, "each crash hook fired");
    }
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_messages_are_dead_lettered_without_blocking_the_queue() {
    let system = System::start().await;
    system.publish_raw("order.created", b"{ this is not json").await;
    let unknown = json!({
        "specversion": "1.0", "id": uuid::Uuid::now_v7(), "source": "/test", "type": "order.created",
        "time": "2026-11-22T00:00:00Z", "datacontenttype": "application/json",
        "dataschema": "urn:orders:order.created:v99", "data": {}
    });
    system.publish_raw("order.created", unknown.to_string().as_bytes()).await;
    let invalid = json!({
        "specversion": "1.0", "id": uuid::Uuid::now_v7(), "source": "/test", "type": "order.created",
        "time": "2026-11-22T00:00:00Z", "datacontenttype": "application/json",
        "dataschema": "urn:orders:order.created:v1", "data": {"order_id": "not-a-uuid"}
    });
    system.publish_raw("order.created", invalid.to_string().as_bytes()).await;

    let pen = system.product("PEN", "1.20", 5).await;
    let (_, order) = system.order(&[(pen, 1)], None).await;
    let done = system.terminal(order["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "confirmed", "the queue kept flowing");
    testkit::eventually("three dead letters", SAGA_TIMEOUT, || async {
        (system.queue_depth("inventory.inbox.dlq").await == 3).then_some(())
    })
    .await;
    assert_eq!(system.queue_depth("inventory.inbox").await, 0);
    // Each poison message is dead-lettered by both consumers of `order.created`.
    system
        .finish_with(|e| {
            e.expect_dead_letters("inventory.inbox.dlq", 3)
                .expect_dead_letters("webhook-dispatcher.inbox.dlq", 3)
        })
        .await;
}
