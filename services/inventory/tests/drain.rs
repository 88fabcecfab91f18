//! Graceful drain of a consumer: SIGTERM while inventory works through a backlog. The batch in
//! hand is finished and acked, the outbox is flushed, the process exits 0, and a restart picks up
//! the rest: every order is reserved exactly once.

#![expect(clippy::unwrap_used, reason = "a test should stop at the first unexpected value")]

use contracts::events::{Customer, OrderCreated, OrderLine};
use contracts::{Amount, Envelope, Event};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::time::Duration;

const ORDERS: usize = 600;

async fn count(db: &testkit::TestDatabase, sql: &str) -> i64 {
    db.count(sql).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_mid_backlog_finishes_the_batch_and_a_restart_does_the_rest_once() {
    let db = testkit::TestDatabase::create().await.unwrap();
    let vhost = testkit::TestVhost::create().await.unwrap();
    let env = [
        ("DATABASE_URL", db.url_for("inventory")),
        ("AMQP_URL", vhost.amqp_url()),
        (
            "JWT_KEY_DIR",
            std::env::temp_dir().join(format!("drain-jwt-{}", uuid::Uuid::new_v4())).display().to_string(),
        ),
    ];
    let binary = env!("CARGO_BIN_EXE_inventory");
    // As an operator loads the definitions: inventory declares only its own queues.
    vhost.load_definitions().await.unwrap();
    let first = testkit::ServiceProcess::start(binary, &env).await.unwrap();
    let product = uuid::Uuid::now_v7();
    let mut conn = AsyncPgConnection::establish(&db.admin_url()).await.unwrap();
    diesel::sql_query(format!(
        "INSERT INTO inventory.products (id, sku, name, price, currency, on_hand) VALUES ('{product}', 'D', 'Drain', 1.00, 'USD', 100000)"
    ))
    .execute(&mut conn)
    .await
    .unwrap();

    // A backlog of orders, published while the consumer runs.
    let broker = messaging::admin::AdminChannel::connect(&vhost.amqp_url()).await.unwrap();
    let backlog: Vec<Envelope> = (0..ORDERS)
        .map(|_| {
            let event = Event::OrderCreated(OrderCreated {
                order_id: uuid::Uuid::now_v7(),
                customer: Customer { name: "Ada".into(), email: "ada@example.com".into(), phone: None },
                currency: "USD".parse().unwrap(),
                lines: vec![OrderLine {
                    product_id: product,
                    product_name: "Drain".into(),
                    quantity: 1,
                    unit_price: Amount::from_db(1.into()),
                    subtotal: Amount::from_db(1.into()),
                }],
                total_amount: Amount::from_db(1.into()),
                payment_method: "pm_card_ok".into(),
            });
            Envelope::new("test", &event)
        })
        .collect();
    broker.publish(&backlog).await.unwrap();
    testkit::eventually("the consumer to be busy", Duration::from_secs(30), || async {
        (count(&db, "SELECT count(*) AS n FROM inventory.reservations").await >= 50).then_some(())
    })
    .await;
    first.terminate().unwrap();
    let status = first.wait(Duration::from_secs(30)).await.unwrap();
    assert!(status.success(), "exit status {status}");

    let reserved = count(&db, "SELECT count(*) AS n FROM inventory.reservations").await;
    assert_eq!(count(&db, "SELECT count(*) AS n FROM inventory.outbox").await, 0, "the outbox was flushed");
    let published = i64::from(broker.queue_depth("order-api.inbox").await.unwrap());
    if published != reserved {
        let mut ids = std::collections::HashMap::<String, usize>::new();
        let mut orders = std::collections::HashSet::<String>::new();
        for body in broker.take_all("order-api.inbox").await.unwrap() {
            let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
            *ids.entry(value["id"].as_str().unwrap().to_owned()).or_default() += 1;
            orders.insert(value["data"]["order_id"].as_str().unwrap().to_owned());
        }
        let duplicates = ids.values().filter(|n| **n > 1).count();
        panic!(
            "one stock.reserved per reservation, but published {published} for {reserved} reservations: {} distinct event ids, {duplicates} duplicated, {} orders",
            ids.len(),
            orders.len()
        );
    }
    // The broker puts unacked deliveries back once it notices the closed connection: poll.
    testkit::eventually("what was not handled to be back in the queue", Duration::from_secs(20), || async {
        (i64::from(broker.queue_depth("inventory.inbox").await.unwrap()) + reserved == ORDERS as i64)
            .then_some(())
    })
    .await;

    let second = testkit::ServiceProcess::start(binary, &env).await.unwrap();
    testkit::eventually("the rest of the backlog", Duration::from_secs(60), || async {
        (count(&db, "SELECT count(*) AS n FROM inventory.reservations").await == ORDERS as i64).then_some(())
    })
    .await;
    assert_eq!(
        count(&db, "SELECT reserved AS n FROM inventory.products").await,
        ORDERS as i64,
        "each order reserved once"
    );
    second.terminate().unwrap();
    assert!(second.wait(Duration::from_secs(30)).await.unwrap().success());
    broker.close().await;
    drop(conn);
    db.drop_database().await.unwrap();
    vhost.delete().await.unwrap();
}
