//! Graceful drain of the gateway: SIGTERM under load. Every order that got a 201 exists, its
//! `order.created` reached RabbitMQ (the outbox was flushed before exit), and the process exits
//! 0 within its deadline. Requests after the stop are refused, never half-done.

#![expect(clippy::unwrap_used, reason = "a test should stop at the first unexpected value")]

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt;
use std::time::Duration;

async fn count(db: &testkit::TestDatabase, sql: &str) -> i64 {
    db.count(sql).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_loses_no_accepted_order() {
    let db = testkit::TestDatabase::create().await.unwrap();
    let vhost = testkit::TestVhost::create().await.unwrap();
    let env = [
        ("DATABASE_URL", db.url_for("order_api")),
        ("AMQP_URL", vhost.amqp_url()),
        (
            "JWT_KEY_DIR",
            std::env::temp_dir().join(format!("drain-jwt-{}", uuid::Uuid::new_v4())).display().to_string(),
        ),
        ("RATE_LIMIT_PER_SECOND", "0".to_owned()),
        // One client places hundreds of orders that nothing processes here.
        ("MAX_OPEN_ORDERS_PER_CLIENT", "0".to_owned()),
        ("METRICS_ADDR", "127.0.0.1:0".to_owned()),
    ];
    // As an operator loads the definitions: the gateway declares only its own queues.
    vhost.load_definitions().await.unwrap();
    let gateway = testkit::ServiceProcess::start(env!("CARGO_BIN_EXE_order-api"), &env).await.unwrap();
    let product = uuid::Uuid::now_v7();
    let mut conn = AsyncPgConnection::establish(&db.admin_url()).await.unwrap();
    diesel::sql_query(format!(
        "INSERT INTO order_api.catalog_products (id, sku, name, price, currency, available, active, version) \
         VALUES ('{product}', 'D', 'Drain', 1.00, 'USD', 100000, true, 1)"
    ))
    .execute(&mut conn)
    .await
    .unwrap();

    let client = reqwest::Client::new();
    let url = gateway.url("/api/v1/orders");
    let body = serde_json::json!({"customer_name": "Ada", "customer_email": "ada@example.com",
        "items": [{"product_id": product, "quantity": 1}]});
    let load = futures_util::stream::iter(0..400)
        .map(move |_| {
            let (client, url, body) = (client.clone(), url.clone(), body.clone());
            async move {
                match client.post(&url).json(&body).send().await {
                    Ok(response) => Some(response.status().as_u16()),
                    Err(_) => None, // refused once the server stopped accepting
                }
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>();
    let load = tokio::spawn(load);
    testkit::eventually("some orders to be accepted", Duration::from_secs(30), || async {
        (count(&db, "SELECT count(*) AS n FROM order_api.orders").await >= 40).then_some(())
    })
    .await;
    gateway.terminate().unwrap();
    let status = gateway.wait(Duration::from_secs(30)).await.unwrap();
    assert!(status.success(), "exit status {status}");
    let answers = load.await.unwrap();

    let accepted = answers.iter().filter(|a| **a == Some(201)).count() as i64;
    assert!(accepted >= 40);
    assert!(answers.iter().all(|a| matches!(a, Some(201) | None)), "only accepted or refused: {answers:?}");
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM order_api.orders").await,
        accepted,
        "every 201 is stored"
    );
    assert_eq!(count(&db, "SELECT count(*) AS n FROM order_api.outbox").await, 0, "the outbox was flushed");
    let broker = messaging::admin::AdminChannel::connect(&vhost.amqp_url()).await.unwrap();
    let published = broker.queue_depth("inventory.inbox").await.unwrap();
    assert_eq!(i64::from(published), accepted, "every order.created reached RabbitMQ");
    broker.close().await;
    drop(conn);
    db.drop_database().await.unwrap();
    vhost.delete().await.unwrap();
}
