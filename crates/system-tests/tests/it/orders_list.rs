//! The orders list (`GET /api/v1/orders`): each filter, the email filter in any letter case,
//! newest-first ordering with a cursor walk while orders keep arriving, a fixed number of
//! queries per page whatever its size; and the pruning of the webhook attempt log.

use crate::support::System;
use diesel::connection::InstrumentationEvent;
use diesel_async::AsyncConnection;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use uuid::Uuid;

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_owned()).collect()
}

/// The ids an admin sees for `query` (one page of up to 100).
async fn listed(system: &System, query: &str) -> Vec<String> {
    let (status, page) = system.admin_get(&format!("/api/v1/orders?limit=100&{query}")).await;
    assert_eq!(status, 200, "{query}: {page}");
    ids(&page)
}

/// Places a guest order of one `product` and returns its id.
async fn place(system: &System, product: Uuid, quantity: i64) -> String {
    let (status, order) = system.order(&[(product, quantity)], None).await;
    assert_eq!(status, 201, "{order}");
    order["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_list_filters_by_status_and_by_creation_time() {
    let system = System::start().await;
    let product = system.product("LIST-FILTER", "2.00", 10).await;
    let mut orders = Vec::new();
    for _ in 0..3 {
        orders.push(place(&system, product, 1).await);
    }
    // More than the stock: fails for insufficient stock.
    orders.push(place(&system, product, 50).await);
    for id in &orders {
        system.terminal(id).await;
    }
    let (status, shipped) = system
        .admin_post(&format!("/api/v1/orders/{}/status", orders[2]), &json!({"status": "shipped"}))
        .await;
    assert_eq!(status, 200, "{shipped}");

    assert_eq!(listed(&system, "status=confirmed").await, orders[..2]);
    assert_eq!(listed(&system, "status=shipped").await, [orders[2].clone()]);
    assert_eq!(listed(&system, "status=failed").await, [orders[3].clone()]);
    assert!(listed(&system, "status=cancelled").await.is_empty());
    let (status, problem) = system.admin_get("/api/v1/orders?status=lost").await;
    assert_eq!(status, 422, "an unknown status is refused, not ignored: {problem}");

    // One order a month, so the boundaries are exact.
    for (month, id) in orders.iter().enumerate() {
        system
            .execute(&format!(
                "UPDATE order_api.orders SET created_at = '2026-0{}-01T00:00:00Z' WHERE id = '{id}'",
                month + 1
            ))
            .await;
    }
    assert_eq!(listed(&system, "created_after=2026-01-15T00:00:00Z").await, orders[1..]);
    assert_eq!(listed(&system, "created_before=2026-03-15T00:00:00Z").await, orders[..3]);
    assert_eq!(
        listed(&system, "created_after=2026-01-15T00:00:00Z&created_before=2026-03-15T00:00:00Z").await,
        orders[1..3]
    );
    // Both bounds are exclusive.
    assert_eq!(
        listed(&system, "created_after=2026-02-01T00:00:00Z&created_before=2026-04-01T00:00:00Z").await,
        [orders[2].clone()]
    );
    // An offset is honoured (+ is %2B in a query string).
    assert_eq!(listed(&system, "created_before=2026-02-01T01:00:00%2B02:00").await, orders[..1]);
    // Filters combine, in either order.
    assert_eq!(
        listed(&system, "status=confirmed&created_after=2026-01-15T00:00:00Z&order=desc").await,
        [orders[1].clone()]
    );
    let (status, problem) = system.admin_get("/api/v1/orders?created_after=yesterday").await;
    assert_eq!(status, 400, "{problem}");
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_list_finds_a_guest_order_by_email_in_any_letter_case() {
    let system = System::start().await;
    let product = system.product("LIST-EMAIL", "3.00", 10).await;
    let body = json!({"customer_name": "Grace Hopper", "customer_email": "Grace.Hopper@Example.COM",
        "items": [{"product_id": product, "quantity": 1}]});
    let (status, order) = system.post("/api/v1/orders", &body).await;
    assert_eq!(status, 201, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    let other = place(&system, product, 1).await;
    system.terminal(&id).await;
    system.terminal(&other).await;

    for asked in [
        "grace.hopper@example.com",
        "GRACE.HOPPER@EXAMPLE.COM",
        "Grace.Hopper@Example.COM",
        "%20grace.hopper@example.com%20",
    ] {
        let (status, page) = system.admin_get(&format!("/api/v1/orders?customer_email={asked}")).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(ids(&page), [id.as_str()], "asked for {asked}");
        assert_eq!(page["items"][0]["customer_email"], "Grace.Hopper@Example.COM", "kept as typed");
    }
    assert_eq!(listed(&system, "customer_email=grace@example.com").await, Vec::<String>::new());
    // The filter is served by the expression index, not a scan of every order.
    let plan = explain(
        &system,
        "SELECT id FROM order_api.orders WHERE lower(customer_email) = lower('Ada@example.com') \
         ORDER BY id LIMIT 20",
    )
    .await;
    assert!(plan.iter().any(|line| line.contains("orders_customer_email_lower")), "{plan:#?}");
    system.finish().await;
}

/// The plan PostgreSQL picks for `query` when it may not scan whole tables.
async fn explain(system: &System, query: &str) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct Line {
        #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
        line: String,
    }
    let mut conn = diesel_async::AsyncPgConnection::establish(&system.db.admin_url()).await.unwrap();
    diesel_async::SimpleAsyncConnection::batch_execute(&mut conn, "SET enable_seqscan = off").await.unwrap();
    let lines: Vec<Line> =
        diesel_async::RunQueryDsl::load(diesel::sql_query(format!("EXPLAIN {query}")), &mut conn)
            .await
            .unwrap();
    lines.into_iter().map(|l| l.line).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_list_newest_first_walks_every_order_once_while_new_ones_arrive() {
    let system = System::start().await;
    let product = system.product("LIST-DESC", "1.00", 1000).await;
    let mut existing = Vec::new();
    for _ in 0..20 {
        existing.push(place(&system, product, 1).await);
    }
    let (status, default) = system.admin_get("/api/v1/orders?limit=100").await;
    assert_eq!(status, 200);
    assert_eq!(ids(&default), existing, "oldest first stays the default");
    assert_eq!(listed(&system, "order=asc").await, existing);

    let mut seen: Vec<String> = Vec::new();
    let mut arrived = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(after) => format!("/api/v1/orders?order=desc&limit=6&starting_after={after}"),
            None => "/api/v1/orders?order=desc&limit=6".to_owned(),
        };
        let (status, page) = system.admin_get(&path).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(ids(&page));
        // Orders keep arriving during the walk: they are newer than the first page.
        arrived.push(place(&system, product, 1).await);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let newest_first: Vec<String> = existing.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first, "each order once, newest first, none skipped");
    let unique: HashSet<&String> = seen.iter().collect();
    assert!(arrived.iter().all(|id| !unique.contains(id)), "the walk does not jump back to new ones");

    // The newest page now starts with what arrived, and its cursor walks on to older orders.
    let (_, page) = system.admin_get("/api/v1/orders?order=desc&limit=2").await;
    let newest: Vec<String> = arrived.iter().rev().take(2).cloned().collect();
    assert_eq!(ids(&page), newest);
    let after = page["next_cursor"].as_str().unwrap();
    let (_, next) =
        system.admin_get(&format!("/api/v1/orders?order=desc&limit=1&starting_after={after}")).await;
    assert_eq!(ids(&next), [arrived[arrived.len() - 3].clone()]);
    let (status, problem) = system.admin_get("/api/v1/orders?order=sideways").await;
    assert_eq!(status, 400, "{problem}");
    for id in existing.iter().chain(&arrived) {
        system.terminal(id).await;
    }
    system.finish().await;
}

/// Attempts left of those inserted `age` ago.
async fn aged(system: &System, age: &str) -> i64 {
    system
        .count(&format!("SELECT count(*) AS n FROM webhooks.attempts WHERE response_body = 'age {age}'"))
        .await
}

/// Counts the statements a connection sends.
fn count_statements(conn: &mut diesel_async::AsyncPgConnection) -> Arc<AtomicUsize> {
    let statements = Arc::new(AtomicUsize::new(0));
    let counter = statements.clone();
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { .. } = event {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    statements
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_list_a_page_costs_the_same_few_queries_whatever_its_size() {
    let system = System::start().await;
    let product = system.product("LIST-N1", "1.00", 1000).await;
    let mut orders = Vec::new();
    for _ in 0..12 {
        orders.push(place(&system, product, 2).await);
    }
    for id in &orders {
        system.terminal(id).await;
    }
    let url = system.db.url_for("order_api");
    let mut conn = diesel_async::AsyncPgConnection::establish(&url).await.unwrap();
    let statements = count_statements(&mut conn);
    let mut cost = Vec::new();
    for limit in [1, 4, 12] {
        let before = statements.load(Ordering::SeqCst);
        let page = order_api::orders::list(&mut conn, &order_api::store::OrderFilter::default(), limit)
            .await
            .unwrap();
        cost.push(statements.load(Ordering::SeqCst) - before);
        assert_eq!(page.items.len(), limit as usize);
        for order in &page.items {
            assert_eq!(order.items.len(), 1, "each order with its items");
            assert_eq!(order.items[0].quantity, 2);
            let history: Vec<&str> = order.status_history.iter().map(|h| h.status.as_str()).collect();
            assert_eq!(history.first(), Some(&"pending"), "each with its own history: {history:?}");
            assert_eq!(history.last(), Some(&order.status.as_str()));
        }
    }
    // Orders, their lines, their histories, and the exchange rates locked by converted orders:
    // one statement each, whatever the page size.
    assert_eq!(cost, [4, 4, 4], "statements for pages of 1, 4 and 12 orders");
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_list_housekeeping_prunes_webhook_attempts_past_their_retention_and_keeps_recent_ones() {
    let mut system = System::start().await;
    let (status, endpoint) = system
        .admin_post(
            "/api/v1/webhook-endpoints",
            &json!({"url": system.receiver.url("/hooks"), "event_types": ["order.confirmed"]}),
        )
        .await;
    assert_eq!(status, 201, "{endpoint}");
    let endpoint = endpoint["id"].as_str().unwrap().to_owned();
    let delivery = Uuid::now_v7();
    system
        .execute(&format!(
            "INSERT INTO webhooks.deliveries (id, endpoint_id, event_id, event_type, payload, status, attempts) \
             VALUES ('{delivery}', '{endpoint}', '{}', 'order.confirmed', '\\x7b7d', 'delivered', 1)",
            Uuid::now_v7()
        ))
        .await;
    let attempts = |age: &str, n: usize| {
        let values: Vec<String> = (0..n)
            .map(|_| {
                format!(
                    "('{}', '{delivery}', now() - interval '{age}', 500, 10, 'age {age}')",
                    Uuid::now_v7()
                )
            })
            .collect();
        format!(
            "INSERT INTO webhooks.attempts (id, delivery_id, attempted_at, status_code, duration_ms, response_body) \
             VALUES {}",
            values.join(", ")
        )
    };
    system.execute(&attempts("31 days", 5)).await;
    system.execute(&attempts("29 days", 2)).await;
    system.execute(&attempts("1 minute", 1)).await;

    // One run deletes what is past the retention, in batches, and nothing younger.
    let pool = platform::db::pool(&system.db.url_for("webhooks"), 2).unwrap();
    let deleted = webhook_dispatcher::retention::prune_once(&pool, 30, 2).await.unwrap();
    assert_eq!(deleted, 5, "three batches of at most 2");
    assert_eq!(
        (aged(&system, "31 days").await, aged(&system, "29 days").await, aged(&system, "1 minute").await),
        (0, 2, 1)
    );
    assert_eq!(webhook_dispatcher::retention::prune_once(&pool, 30, 2).await.unwrap(), 0);

    // The service runs it on its own, with the configured retention.
    system.execute(&attempts("400 days", 3)).await;
    system.stop_dispatcher().await;
    let refused = system.try_start_dispatcher(|s| s.webhook_attempt_retention_days = 0).await;
    let error = refused.err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(error.contains("webhook_attempt_retention_days"), "0 days is refused by name: {error}");
    system.start_dispatcher(|s| s.webhook_attempt_retention_days = 20).await;
    testkit::eventually("the dispatcher to prune on its own", Duration::from_secs(20), || async {
        (aged(&system, "400 days").await == 0 && aged(&system, "29 days").await == 0).then_some(())
    })
    .await;
    assert_eq!(aged(&system, "1 minute").await, 1, "recent attempts stay");
    assert_eq!(
        system.count(&format!("SELECT count(*) AS n FROM webhooks.deliveries WHERE id = '{delivery}'")).await,
        1
    );
    system.finish().await;
}
