//! Product administration through the gateway: update, stock adjustments, soft delete, and who
//! may do them (checked at the gateway and again by inventory).

use crate::support::{SAGA_TIMEOUT, System, as_gateway, test_token_keys};
use contracts::events::{Customer, FailureReason, OrderCreated, OrderFailed, OrderLine, ReservedLine};
use contracts::{Amount, Envelope, Event};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

/// A call to `base` (the gateway or inventory itself) with an optional bearer token; returns
/// the status, the content type and the body.
async fn call(
    system: &System,
    base: &str,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, String, Value) {
    let mut request = system.http.request(method, format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, content_type, response.json().await.unwrap_or(Value::Null))
}

async fn admin(system: &System, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
    system.send_as(&system.admin_token, method, path, body).await
}

async fn customer_token(system: &System) -> String {
    let (email, password) = ("carol@example.com", "a long enough passphrase");
    let (status, body) = system
        .post("/api/v1/auth/register", &json!({"email": email, "password": password, "name": "Carol"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) =
        system.post("/api/v1/auth/login", &json!({"email": email, "password": password})).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// Waits until the gateway's catalog row for `product` satisfies `condition` (SQL).
async fn catalog_until(system: &System, product: Uuid, condition: &str) {
    let sql = format!(
        "SELECT count(*) AS n FROM order_api.catalog_products WHERE id = '{product}' AND {condition}"
    );
    testkit::eventually(condition, SAGA_TIMEOUT, || async { (system.count(&sql).await == 1).then_some(()) })
        .await;
}

async fn publish(system: &System, event: Event) {
    system.publish_raw(event.event_type(), &Envelope::new("system-tests", &event).to_bytes()).await;
}

fn customer() -> Customer {
    Customer { name: "Ada".into(), email: "ada@example.com".into(), phone: None }
}

/// An `order.created` the gateway never placed: inventory reserves it and nothing settles it
/// until the test says so, so the units stay reserved.
async fn order_created(system: &System, product: Uuid, quantity: u32) -> Uuid {
    let order_id = Uuid::now_v7();
    let line = OrderLine {
        product_id: product,
        product_name: "held".into(),
        quantity,
        unit_price: Amount::zero(),
        subtotal: Amount::zero(),
    };
    let created = OrderCreated {
        order_id,
        customer: customer(),
        currency: "USD".parse().unwrap(),
        lines: vec![line],
        total_amount: Amount::zero(),
        payment_method: "pm_card_ok".into(),
    };
    publish(system, Event::OrderCreated(created)).await;
    order_id
}

async fn view(system: &System, product: Uuid) -> Value {
    admin(system, Method::GET, &format!("/api/v1/products/{product}?include_deleted=true"), None).await.1
}

async fn hold(system: &System, product: Uuid, quantity: u32) -> Uuid {
    let order_id = order_created(system, product, quantity).await;
    testkit::eventually("the units to be reserved", SAGA_TIMEOUT, || async {
        let view = view(system, product).await;
        (view["stock"].as_i64().unwrap() - view["available"].as_i64().unwrap() == i64::from(quantity))
            .then_some(())
    })
    .await;
    order_id
}

fn adjustments(product: impl std::fmt::Display) -> String {
    format!("/api/v1/products/{product}/stock-adjustments")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_updated_price_applies_to_new_orders_while_existing_ones_keep_theirs() {
    let system = System::start().await;
    let product = system.product("LAMP", "10.00", 10).await;
    let (status, first) = system.order(&[(product, 2)], None).await;
    assert_eq!((status, first["total_amount"].as_str()), (201, Some("20.00")), "{first}");

    let patch = json!({"price": "12.50", "name": "Desk lamp", "description": "Warm light"});
    let (status, updated) =
        admin(&system, Method::PATCH, &format!("/api/v1/products/{product}"), Some(&patch)).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!((updated["price"].as_str(), updated["name"].as_str()), (Some("12.50"), Some("Desk lamp")));
    assert_eq!(
        (updated["sku"].as_str(), updated["currency"].as_str()),
        (Some("LAMP"), Some("USD")),
        "untouched"
    );
    let cleared = admin(
        &system,
        Method::PATCH,
        &format!("/api/v1/products/{product}"),
        Some(&json!({"description": null})),
    )
    .await
    .1;
    assert_eq!((cleared["description"].clone(), cleared["price"].as_str()), (Value::Null, Some("12.50")));

    catalog_until(&system, product, "price = 12.50 AND name = 'Desk lamp'").await;
    let (status, second) = system.order(&[(product, 1)], None).await;
    assert_eq!((status, second["total_amount"].as_str()), (201, Some("12.50")), "{second}");
    assert_eq!(second["items"][0]["price_at_purchase"], "12.50");

    let first = system
        .order_until(first["id"].as_str().unwrap(), "the first order", |o| o["status"] == "confirmed")
        .await;
    assert_eq!(
        (first["total_amount"].as_str(), first["items"][0]["price_at_purchase"].as_str()),
        (Some("20.00"), Some("10.00"))
    );
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restocking_raises_stock_and_available_and_records_who_and_why() {
    let system = System::start().await;
    let product = system.product("SOCKS", "3.00", 5).await;
    let body = json!({"delta": 7, "reason": "restock", "note": "pallet 42"});
    let (status, restocked) = system.admin_post(&adjustments(product), &body).await;
    assert_eq!(status, 200, "{restocked}");
    assert_eq!((restocked["stock"].as_i64(), restocked["available"].as_i64()), (Some(12), Some(12)));
    catalog_until(&system, product, "available = 12").await;

    let (status, damaged) =
        system.admin_post(&adjustments(product), &json!({"delta": -2, "reason": "damaged"})).await;
    assert_eq!((status, damaged["stock"].as_i64(), damaged["available"].as_i64()), (200, Some(10), Some(10)));
    assert_eq!(system.product_view(product).await["stock"], 10);

    let admin_id = test_token_keys(60).verify(&system.admin_token).unwrap().sub;
    let recorded = format!(
        "SELECT count(*) AS n FROM inventory.stock_adjustments WHERE product_id = '{product}' AND actor = '{admin_id}' \
         AND ((delta = 7 AND reason = 'restock' AND note = 'pallet 42') OR (delta = -2 AND reason = 'damaged' AND note IS NULL))"
    );
    assert_eq!(system.count(&recorded).await, 2);
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn removing_stock_below_what_is_reserved_is_a_conflict_and_changes_nothing() {
    let system = System::start().await;
    let product = system.product("DESK", "80.00", 10).await;
    hold(&system, product, 6).await;
    let before = system.product_view(product).await;

    let (status, problem) =
        system.admin_post(&adjustments(product), &json!({"delta": -5, "reason": "correction"})).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("insufficient_stock")), "{problem}");
    assert_eq!(
        (problem["stock"].as_i64(), problem["available"].as_i64(), problem["reserved"].as_i64()),
        (Some(10), Some(4), Some(6))
    );
    assert_eq!(system.product_view(product).await, before, "nothing changed");
    assert_eq!(system.count("SELECT count(*) AS n FROM inventory.stock_adjustments").await, 0);

    let (status, emptied) =
        system.admin_post(&adjustments(product), &json!({"delta": -4, "reason": "correction"})).await;
    assert_eq!((status, emptied["stock"].as_i64(), emptied["available"].as_i64()), (200, Some(6), Some(0)));
    // The hand-made order's stock.reserved reaches a gateway that never had the order.
    system.finish_with(|e| e.expect_dead_letters("order-api.inbox.dlq", 1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_product_is_hidden_unorderable_and_keeps_its_sku_while_old_reservations_settle() {
    let system = System::start().await;
    let product = system.product("CHAIR", "50.00", 10).await;
    let held = hold(&system, product, 3).await;
    let path = format!("/api/v1/products/{product}");

    let (status, _) = admin(&system, Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    assert_eq!(system.get(&path).await.0, 404);
    let listed = system.get("/api/v1/products").await.1;
    assert!(listed["items"].as_array().unwrap().is_empty(), "{listed}");
    let deleted = view(&system, product).await;
    assert!(deleted["deleted_at"].is_string(), "admins still see it: {deleted}");
    let all = system.admin_get("/api/v1/products?include_deleted=true").await.1;
    assert_eq!(all["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(system.get(&format!("{path}?include_deleted=true")).await.0, 401, "only for admins");

    catalog_until(&system, product, "active = false").await;
    let (status, problem) = system.order(&[(product, 1)], None).await;
    assert_eq!((status, problem["code"].as_str()), (422, Some("validation_failed")), "{problem}");
    assert!(problem["errors"][0]["message"].as_str().unwrap().starts_with("unknown product"), "{problem}");
    let again = json!({"sku": "CHAIR", "name": "Chair", "price": "1.00", "currency": "USD", "stock": 1});
    let (status, problem) = system.admin_post("/api/v1/products", &again).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("sku_taken")));

    // A new reservation is refused as an unknown product; the one made before settles.
    let late = order_created(&system, product, 1).await;
    let rejected = testkit::eventually("stock.rejected", SAGA_TIMEOUT, || async {
        system
            .events()
            .into_iter()
            .find(|e| e["type"] == "stock.rejected" && e["subject"] == late.to_string())
    })
    .await;
    assert_eq!(rejected["data"]["reason"], "unknown_product", "{rejected}");
    let failed = OrderFailed {
        order_id: held,
        customer: customer(),
        reason: FailureReason::PaymentDeclined,
        lines: vec![ReservedLine { product_id: product, quantity: 3 }],
    };
    publish(&system, Event::OrderFailed(failed)).await;
    testkit::eventually("the held units released", SAGA_TIMEOUT, || async {
        (view(&system, product).await["available"] == 10).then_some(())
    })
    .await;

    assert_eq!(admin(&system, Method::DELETE, &path, None).await.0, 204, "deleting again changes nothing");
    assert_eq!(admin(&system, Method::PATCH, &path, Some(&json!({"price": "1.00"}))).await.0, 404);
    let (status, _) =
        system.admin_post(&adjustments(product), &json!({"delta": 1, "reason": "restock"})).await;
    assert_eq!(status, 404);
    // The hand-made orders' stock.reserved and stock.rejected reach a gateway that never had them.
    system.finish_with(|e| e.expect_dead_letters("order-api.inbox.dlq", 2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_product_changes_are_4xx_problems_and_change_nothing() {
    let system = System::start().await;
    let product = system.product("PEN", "2.00", 10).await;
    let before = system.product_view(product).await;
    let (id, bad, unknown) = (product.to_string(), "not-a-uuid", Uuid::now_v7().to_string());
    let update = |id: &str, body: Value| (Method::PATCH, format!("/api/v1/products/{id}"), Some(body));
    let adjust = |id: &str, body: Value| (Method::POST, adjustments(id), Some(body));
    let delete = |id: &str| (Method::DELETE, format!("/api/v1/products/{id}"), None);
    let restock = json!({"delta": 1, "reason": "restock"});
    let cases = [
        ("unknown field", update(&id, json!({"colour": "red"})), 422),
        ("sku is not editable", update(&id, json!({"sku": "PEN-2"})), 422),
        ("negative price", update(&id, json!({"price": "-1.00"})), 422),
        ("too precise price", update(&id, json!({"price": "1.001"})), 422),
        ("numeric price", update(&id, json!({"price": 1.5})), 422),
        ("bad currency", update(&id, json!({"currency": "usd"})), 422),
        ("null name", update(&id, json!({"name": null})), 422),
        ("empty change", update(&id, json!({})), 422),
        ("zero delta", adjust(&id, json!({"delta": 0, "reason": "restock"})), 422),
        ("missing reason", adjust(&id, json!({"delta": 5})), 422),
        ("unknown reason", adjust(&id, json!({"delta": 5, "reason": "found"})), 422),
        ("negative restock", adjust(&id, json!({"delta": -5, "reason": "restock"})), 422),
        ("delta as a string", adjust(&id, json!({"delta": "5", "reason": "restock"})), 422),
        ("unknown adjustment field", adjust(&id, json!({"delta": 5, "reason": "restock", "by": 1})), 422),
        ("bad id (update)", update(bad, json!({"price": "1.00"})), 404),
        ("bad id (adjust)", adjust(bad, restock.clone()), 404),
        ("bad id (delete)", delete(bad), 404),
        ("unknown id (update)", update(&unknown, json!({"price": "1.00"})), 404),
        ("unknown id (adjust)", adjust(&unknown, restock.clone()), 404),
        ("unknown id (delete)", delete(&unknown), 404),
    ];
    for (name, (method, path, body), expected) in cases {
        let (status, content_type, problem) =
            call(&system, &system.gateway, Some(&system.admin_token), method, &path, body.as_ref()).await;
        let problem_json = (status, content_type.as_str(), problem["status"].as_u64());
        assert_eq!(
            problem_json,
            (expected, "application/problem+json", Some(expected.into())),
            "{name}: {problem}"
        );
    }
    let malformed = system
        .http
        .patch(system.url(&format!("/api/v1/products/{product}")))
        .bearer_auth(&system.admin_token)
        .header("content-type", "application/json")
        .body("{\"price\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status().as_u16(), 400);

    assert_eq!(system.product_view(product).await, before, "nothing changed");
    assert_eq!(system.count("SELECT count(*) AS n FROM inventory.stock_adjustments").await, 0);
    assert_eq!(
        system.count("SELECT count(*) AS n FROM inventory.products WHERE deleted_at IS NOT NULL").await,
        0
    );
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn product_writes_need_an_admin_at_the_gateway_and_again_at_inventory() {
    let system = System::start().await;
    let product = system.product("KEY", "5.00", 10).await;
    let before = system.product_view(product).await;
    let carol = customer_token(&system).await;
    let writes: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            "/products".into(),
            Some(json!({"sku": "K2", "name": "K", "price": "1.00", "currency": "USD", "stock": 1})),
        ),
        (Method::PATCH, format!("/products/{product}"), Some(json!({"price": "1.00"}))),
        (
            Method::POST,
            format!("/products/{product}/stock-adjustments"),
            Some(json!({"delta": 1, "reason": "restock"})),
        ),
        (Method::DELETE, format!("/products/{product}"), None),
    ];
    for (method, path, body) in &writes {
        let gateway_path = format!("/api/v1{path}");
        let via = |base, path, token| call(&system, base, token, method.clone(), path, body.as_ref());
        assert_eq!(via(&system.gateway, &gateway_path, None).await.0, 401, "{method} {path} without a token");
        assert_eq!(
            via(&system.gateway, &gateway_path, Some(&carol)).await.0,
            403,
            "{method} {path} as a customer"
        );
        let (status, content_type, _) = via(&system.inventory, path, None).await;
        assert_eq!(
            (status, content_type.as_str()),
            (401, "application/problem+json"),
            "{method} {path} at inventory"
        );
        assert_eq!(
            via(&system.inventory, path, Some(&carol)).await.0,
            401,
            "{method} {path} at inventory with a customer's own token"
        );
        let carol_inside = as_gateway(&carol);
        assert_eq!(
            via(&system.inventory, path, Some(&carol_inside)).await.0,
            403,
            "{method} {path} at inventory as a customer"
        );
        assert_eq!(
            via(&system.inventory, path, Some("forged")).await.0,
            401,
            "{method} {path} with a bad token"
        );
    }
    assert_eq!(system.product_view(product).await, before, "nothing changed");
    assert_eq!(system.count("SELECT count(*) AS n FROM inventory.products").await, 1);
    let (status, _, direct) =
        call(&system, &system.inventory, None, Method::GET, &format!("/products/{product}"), None).await;
    assert_eq!((status, direct["sku"].as_str()), (200, Some("KEY")), "reads stay public");
    system.finish().await;
}
