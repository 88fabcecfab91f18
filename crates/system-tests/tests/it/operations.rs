//! Operations: dead letters listed, replayed once fixed and purged with confirmation; stuck
//! orders listed, re-driven and failed, through the admin routes and the `ops` CLI.

use crate::support::{Options, SAGA_TIMEOUT, System, mint_token, test_token_keys};
use contracts::events::{ReservedLine, StockReserved};
use contracts::{Envelope, Event};
use platform::auth::Role;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

const ADMIN_ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/admin/dead-letters"),
    ("POST", "/api/v1/admin/dead-letters/replay"),
    ("POST", "/api/v1/admin/dead-letters/purge"),
    ("GET", "/api/v1/admin/stuck-orders"),
    ("POST", "/api/v1/admin/orders/{id}/redrive"),
    ("POST", "/api/v1/admin/orders/{id}/fail"),
];

fn customer_token() -> String {
    mint_token(&test_token_keys(600), Uuid::now_v7(), "carol@example.com", "Carol", Role::Customer)
}

fn queue<'a>(listing: &'a Value, name: &str) -> &'a Value {
    listing["queues"].as_array().unwrap().iter().find(|q| q["queue"] == name).unwrap()
}

async fn depth_becomes(system: &System, queue: &str, expected: u32) {
    testkit::eventually(&format!("{queue} to hold {expected}"), SAGA_TIMEOUT, || async {
        (system.queue_depth(queue).await == expected).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_admin_route_needs_an_admin() {
    let system = System::start().await;
    let customer = customer_token();
    for (method, path) in ADMIN_ROUTES {
        let path = path.replace("{id}", &Uuid::now_v7().to_string());
        let method: Method = method.parse().unwrap();
        let mut anonymous = system.http.request(method.clone(), system.url(&path));
        if method == Method::POST {
            anonymous = anonymous.json(&json!({}));
        }
        let status = anonymous.send().await.unwrap().status().as_u16();
        assert_eq!(status, 401, "{method} {path} without a token");
        let body = (method == Method::POST).then(|| json!({}));
        let (status, _) = system.send_as(&customer, method.clone(), &path, body.as_ref()).await;
        assert_eq!(status, 403, "{method} {path} as a customer");
    }
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dead_letters_are_listed_with_their_reason_replayed_once_fixed_and_purged_only_when_confirmed() {
    let system = System::start().await;
    // Poison for inventory, and a reply about an order order-api does not know (yet).
    system.publish_raw("order.created", b"{ this is not json").await;
    let order_id = Uuid::now_v7();
    let early = Envelope::new(
        "/test",
        &Event::StockReserved(StockReserved {
            order_id,
            lines: vec![ReservedLine { product_id: Uuid::now_v7(), quantity: 1 }],
        }),
    );
    system.publish_raw("stock.reserved", &early.to_bytes()).await;
    depth_becomes(&system, "inventory.inbox.dlq", 1).await;
    depth_becomes(&system, "order-api.inbox.dlq", 1).await;

    let (status, listing) = system.admin_get("/api/v1/admin/dead-letters").await;
    assert_eq!(status, 200, "{listing}");
    assert_eq!(listing["queues"].as_array().unwrap().len(), 5, "every service's DLQ: {listing}");
    let poison = &queue(&listing, "inventory.inbox.dlq")["messages"][0];
    assert_eq!(queue(&listing, "inventory.inbox.dlq")["count"], 1);
    assert!(poison["reason"].as_str().unwrap().starts_with("not a JSON CloudEvent"), "{listing}");
    assert_eq!(poison["original_routing_key"], "order.created");
    let (status, one) =
        system.admin_get("/api/v1/admin/dead-letters?queue=order-api.inbox.dlq&limit=5").await;
    assert_eq!(status, 200, "{one}");
    let early_letter = &one["queues"][0]["messages"][0];
    assert_eq!(early_letter["event_id"], early.id.to_string());
    assert_eq!(early_letter["event_type"], "stock.reserved");
    assert_eq!(early_letter["original_routing_key"], "stock.reserved");
    assert!(early_letter["reason"].as_str().unwrap().contains(&format!("no order {order_id}")), "{one}");
    assert!(early_letter["dead_lettered_at"].as_str().is_some(), "{one}");
    // Looking loses nothing.
    assert_eq!(system.queue_depth("order-api.inbox.dlq").await, 1);
    assert_eq!(system.queue_depth("inventory.inbox.dlq").await, 1);

    let (status, _) = system.admin_get("/api/v1/admin/dead-letters?queue=orders.events").await;
    assert_eq!(status, 422, "only dead-letter queues");
    let (status, missing) = system
        .admin_post(
            "/api/v1/admin/dead-letters/replay",
            &json!({"queue": "order-api.inbox.dlq", "message_id": Uuid::now_v7().to_string()}),
        )
        .await;
    assert_eq!(status, 404, "{missing}");
    assert_eq!(system.queue_depth("order-api.inbox.dlq").await, 1, "the others stay");

    // The order arrives; the replayed reply now moves it.
    system
        .execute(&format!(
            "INSERT INTO order_api.orders (id, status, customer_name, customer_email, currency, total_amount, payment_method) \
             VALUES ('{order_id}', 'pending', 'Ada', 'ada@example.com', 'USD', 10.00, 'pm_card_ok')"
        ))
        .await;
    let (status, replayed) = system
        .admin_post(
            "/api/v1/admin/dead-letters/replay",
            &json!({"queue": "order-api.inbox.dlq", "message_id": early.id.to_string()}),
        )
        .await;
    assert_eq!((status, replayed["replayed"].as_u64()), (200, Some(1)), "{replayed}");
    let moved = system
        .order_until(&order_id.to_string(), "the replayed reply handled", |o| o["status"] != "pending")
        .await;
    // Inserted by hand without a history row: the first entry is the replayed event's move.
    assert_eq!(moved["status_history"][0]["status"], "processing", "{moved}");
    assert_eq!(moved["status_history"][0]["caused_by"], format!("event:{}", early.id));
    depth_becomes(&system, "order-api.inbox.dlq", 0).await;

    // The CLI lists it; replaying all sends the poison back, and it is dead-lettered again
    // (once: the replay looks at no more messages than the queue held).
    let (ok, table, stderr) = ops(&system, &["dlq", "list", "--queue", "inventory.inbox.dlq"]).await;
    assert!(ok && table.contains("inventory.inbox.dlq: 1 message(s)"), "{table}{stderr}");
    assert!(table.contains("not a JSON CloudEvent"), "{table}");
    let (ok, out, stderr) = ops(&system, &["dlq", "replay", "--queue", "inventory.inbox.dlq", "--all"]).await;
    assert!(ok && out.contains("replayed 1 message(s)"), "{out}{stderr}");
    testkit::eventually("the poison dead-lettered again", SAGA_TIMEOUT, || async {
        let (_, listing) = system.admin_get("/api/v1/admin/dead-letters?queue=inventory.inbox.dlq").await;
        (listing["queues"][0]["messages"][0]["reason"].as_str().is_some()
            && listing["queues"][0]["count"] == 1)
            .then_some(())
    })
    .await;

    let (status, refused) = system
        .admin_post(
            "/api/v1/admin/dead-letters/purge",
            &json!({"queue": "inventory.inbox.dlq", "confirm": "inventory.inbox"}),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(system.queue_depth("inventory.inbox.dlq").await, 1);
    let (status, purged) = system
        .admin_post(
            "/api/v1/admin/dead-letters/purge",
            &json!({"queue": "inventory.inbox.dlq", "confirm": "inventory.inbox.dlq"}),
        )
        .await;
    assert_eq!((status, purged["purged"].as_u64()), (200, Some(1)), "{purged}");
    assert_eq!(system.queue_depth("inventory.inbox.dlq").await, 0);
    // The webhook dispatcher consumes `order.created` too, and dead-lettered the poison as well.
    system.finish_with(|e| e.expect_dead_letters("webhook-dispatcher.inbox.dlq", 1)).await;
}

fn ops_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/it-<hash> → target/<profile>/ops
    let path = exe.parent().and_then(|deps| deps.parent()).unwrap().join("ops");
    assert!(path.exists(), "{} is missing: run `cargo build -p ops` before these tests", path.display());
    path
}

async fn ops(system: &System, args: &[&str]) -> (bool, String, String) {
    let output = tokio::process::Command::new(ops_binary())
        .args(["--gateway", &system.gateway, "--token", &system.admin_token])
        .args(args)
        .env_remove("OPS_TOKEN")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.success(), text(&output.stdout), text(&output.stderr))
}

fn events_for(system: &System, event_type: &str, order_id: &str) -> usize {
    system.events().iter().filter(|e| e["type"] == event_type && e["data"]["order_id"] == order_id).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stuck_order_is_listed_redriven_and_failed_through_the_route_and_the_cli() {
    // No inventory running: orders stay pending.
    let system = System::start_with(Options { inventory_instances: 0, ..Default::default() }).await;
    let product = Uuid::now_v7();
    system
        .execute(&format!(
            "INSERT INTO order_api.catalog_products (id, sku, name, price, currency, available, active, version) \
             VALUES ('{product}', 'S', 'Stuck product', 4.00, 'USD', 10, true, 1)"
        ))
        .await;
    let (_, first) = system.order(&[(product, 1)], None).await;
    let (_, second) = system.order(&[(product, 2)], None).await;
    let (first, second) = (first["id"].as_str().unwrap(), second["id"].as_str().unwrap());

    let (status, fresh) = system.admin_get("/api/v1/admin/stuck-orders").await;
    assert_eq!((status, fresh["older_than_seconds"].as_i64()), (200, Some(900)), "{fresh}");
    assert_eq!(fresh["items"], json!([]), "nothing is stuck for 15 minutes yet");
    let (status, stuck) = system.admin_get("/api/v1/admin/stuck-orders?older_than_seconds=0").await;
    assert_eq!(status, 200, "{stuck}");
    let ids: Vec<&str> =
        stuck["items"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [first, second]);
    assert_eq!(stuck["items"][0]["status"], "pending");

    testkit::eventually("order.created published", SAGA_TIMEOUT, || async {
        (events_for(&system, "order.created", first) == 1).then_some(())
    })
    .await;
    let (status, redriven) =
        system.admin_post(&format!("/api/v1/admin/orders/{first}/redrive"), &json!({})).await;
    assert_eq!((status, redriven["event_type"].as_str()), (200, Some("order.created")), "{redriven}");
    testkit::eventually("order.created published again", SAGA_TIMEOUT, || async {
        (events_for(&system, "order.created", first) == 2).then_some(())
    })
    .await;

    let (status, failed) = system
        .admin_post(&format!("/api/v1/admin/orders/{first}/fail"), &json!({"reason": "stuck for hours"}))
        .await;
    assert_eq!(status, 200, "{failed}");
    assert_eq!(
        (failed["status"].as_str(), failed["failure_reason"].as_str()),
        (Some("failed"), Some("expired"))
    );
    let last = failed["status_history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["status"].as_str(), last["reason"].as_str()), (Some("failed"), Some("expired")));
    testkit::eventually("order.failed published", SAGA_TIMEOUT, || async {
        (events_for(&system, "order.failed", first) == 1).then_some(())
    })
    .await;
    let (status, again) = system.admin_post(&format!("/api/v1/admin/orders/{first}/fail"), &json!({})).await;
    assert_eq!((status, again["current_status"].as_str()), (409, Some("failed")), "{again}");
    let (status, _) = system.admin_post(&format!("/api/v1/admin/orders/{first}/redrive"), &json!({})).await;
    assert_eq!(status, 409, "a failed order is out of the saga");

    // The CLI: a table for people, JSON for scripts.
    let (ok, table, stderr) = ops(&system, &["orders", "stuck", "--older-than", "0s"]).await;
    assert!(ok, "{stderr}");
    assert!(table.contains(second) && !table.contains(first), "{table}");
    let (ok, out, stderr) = ops(&system, &["--json", "orders", "fail", second]).await;
    assert!(ok, "{stderr}");
    let cli_failed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (cli_failed["status"].as_str(), cli_failed["failure_reason"].as_str()),
        (Some("failed"), Some("expired"))
    );
    let (status, after) = system.admin_get("/api/v1/admin/stuck-orders?older_than_seconds=0").await;
    assert_eq!((status, &after["items"]), (200, &json!([])));
    let (ok, _, stderr) =
        ops(&system, &["dlq", "purge", "--queue", "payment.inbox.dlq", "--yes", "payment"]).await;
    assert!(!ok && stderr.contains("not confirmed"), "{stderr}");
    system
        .finish_with(|e| e.allow_queued_messages("inventory.inbox", "no inventory runs in this test"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn looking_at_a_dead_letter_queue_keeps_its_order_and_replaying_one_leaves_the_rest() {
    let system = System::start().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = Uuid::now_v7();
        let unknown_version = json!({
            "specversion": "1.0", "id": id, "source": "/test", "type": "payment.requested",
            "time": "2026-11-22T00:00:00Z", "datacontenttype": "application/json",
            "dataschema": "urn:orders:payment.requested:v99", "data": {}
        });
        system.publish_raw("payment.requested", unknown_version.to_string().as_bytes()).await;
        ids.push(id.to_string());
    }
    depth_becomes(&system, "payment.inbox.dlq", 3).await;
    let listed = || async {
        let (status, listing) = system.admin_get("/api/v1/admin/dead-letters?queue=payment.inbox.dlq").await;
        assert_eq!(status, 200, "{listing}");
        let messages = listing["queues"][0]["messages"].as_array().unwrap().clone();
        messages.iter().map(|m| m["event_id"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(listed().await, ids);
    assert_eq!(listed().await, ids, "looking twice changes nothing");

    let (status, replayed) = system
        .admin_post(
            "/api/v1/admin/dead-letters/replay",
            &json!({"queue": "payment.inbox.dlq", "message_id": ids[1]}),
        )
        .await;
    assert_eq!((status, replayed["replayed"].as_u64()), (200, Some(1)), "{replayed}");
    // Still unreadable, so it comes back behind the others.
    depth_becomes(&system, "payment.inbox.dlq", 3).await;
    assert_eq!(listed().await, [ids[0].clone(), ids[2].clone(), ids[1].clone()]);
    system.finish_with(|e| e.expect_dead_letters("payment.inbox.dlq", 3)).await;
}
