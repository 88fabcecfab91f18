//! The public API's contract: who may do what, safe retries, pagination, cancellation in every
//! state, and limits.

use crate::support::{Options, SAGA_TIMEOUT, System, as_gateway, mint_token, test_token_keys};
use futures_util::future::join_all;
use platform::auth::{Role, TokenKeys};
use reqwest::Method;
use serde_json::{Value, json};

async fn customer(system: &System, email: &str) -> String {
    let (status, body) = system
        .post(
            "/api/v1/auth/register",
            &json!({"email": email, "password": "a long enough passphrase", "name": "Customer"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = system
        .post("/api/v1/auth/login", &json!({"email": email, "password": "a long enough passphrase"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_i64().unwrap() > 0);
    body["access_token"].as_str().unwrap().to_owned()
}

fn order_body(product: uuid::Uuid) -> Value {
    json!({"items": [{"product_id": product, "quantity": 1}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_role_reaches_exactly_its_routes() {
    let system = System::start().await;
    let ada = customer(&system, "ada@example.com").await;
    let bob = customer(&system, "bob@example.com").await;
    let admin = system.admin_token.clone();
    let product = system.product("ROLE-1", "3.00", 100).await;

    let (status, me) = system.send_as(&ada, Method::GET, "/api/v1/auth/me", None).await;
    assert_eq!(
        (status, me["email"].as_str(), me["role"].as_str()),
        (200, Some("ada@example.com"), Some("customer"))
    );
    assert_eq!(system.get("/api/v1/auth/me").await.0, 401);

    // Admin-only routes: 401 without a token, 403 for a customer, allowed for an admin.
    let product_body = json!({"sku": "ROLE-2", "name": "X", "price": "1.00", "currency": "USD", "stock": 1});
    let admin_routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::POST, "/api/v1/products".into(), Some(product_body.clone())),
        (Method::POST, "/api/v1/webhook-endpoints".into(), Some(json!({"url": system.receiver.url("/h")}))),
        (Method::GET, "/api/v1/webhook-endpoints".into(), None),
        (Method::GET, "/api/v1/notifications".into(), None),
    ];
    for (method, path, body) in &admin_routes {
        let mut anonymous = system.http.request(method.clone(), system.url(path));
        if let Some(body) = body {
            anonymous = anonymous.json(body);
        }
        assert_eq!(anonymous.send().await.unwrap().status().as_u16(), 401, "{method} {path} without a token");
        assert_eq!(
            system.send_as(&ada, method.clone(), path, body.as_ref()).await.0,
            403,
            "{method} {path} as a customer"
        );
        let (status, answer) = system.send_as(&admin, method.clone(), path, body.as_ref()).await;
        assert!(status == 200 || status == 201, "{method} {path} as admin: {status} {answer}");
    }

    // Defence in depth: the services behind the gateway check the caller themselves. A user's
    // own token is not for them at all (401); the gateway's token for a customer is a 403.
    let ada_inside = as_gateway(&ada);
    for (base, path) in [(&system.inventory, "/products"), (&system.dispatcher_url, "/webhook-endpoints")] {
        let direct = system.http.post(format!("{base}{path}")).json(&json!({})).send().await.unwrap();
        assert_eq!(direct.status().as_u16(), 401, "{base}{path} without a token");
        for (token, expected) in [(&ada, 401..=401), (&ada_inside, 403..=405)] {
            let direct = system
                .http
                .post(format!("{base}{path}"))
                .bearer_auth(token)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert!(
                expected.contains(&direct.status().as_u16()),
                "{base}{path} as a customer: {}",
                direct.status()
            );
        }
    }
    for url in
        [format!("{}/webhook-endpoints", system.dispatcher_url), format!("{}/notifications", system.notifier)]
    {
        for (token, expected) in [(&ada, 401), (&ada_inside, 403)] {
            let direct = system.http.get(&url).bearer_auth(token).send().await.unwrap();
            assert_eq!(direct.status().as_u16(), expected, "{url}");
        }
    }
    let direct = system.http.get(format!("{}/notifications", system.notifier)).send().await.unwrap();
    assert_eq!(direct.status().as_u16(), 401);

    // Orders belong to their customer.
    let (status, order) =
        system.send_as(&ada, Method::POST, "/api/v1/orders", Some(&order_body(product))).await;
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["customer_email"], "ada@example.com", "taken from the account");
    let path = format!("/api/v1/orders/{}", order["id"].as_str().unwrap());
    assert_eq!(system.send_as(&ada, Method::GET, &path, None).await.0, 200);
    assert_eq!(system.send_as(&bob, Method::GET, &path, None).await.0, 404, "another customer's order");
    assert_eq!(system.get(&path).await.0, 404, "without a token: the same answer as an unknown id");
    assert_eq!(system.send_as(&admin, Method::GET, &path, None).await.0, 200);
    let payment = format!("{path}/payment");
    testkit::eventually("the order's payment", SAGA_TIMEOUT, || async {
        (system.send_as(&ada, Method::GET, &payment, None).await.0 == 200).then_some(())
    })
    .await;
    assert_eq!(system.send_as(&bob, Method::GET, &payment, None).await.0, 404, "another customer's payment");
    assert_eq!(system.get(&payment).await.0, 404);
    assert_eq!(system.send_as(&bob, Method::POST, &format!("{path}/cancel"), Some(&json!({}))).await.0, 404);
    assert_eq!(system.post(&format!("{path}/cancel"), &json!({})).await.0, 404);
    assert_eq!(
        system
            .send_as(&ada, Method::POST, &format!("{path}/status"), Some(&json!({"status": "shipped"})))
            .await
            .0,
        403
    );

    let (_, ada_list) = system.send_as(&ada, Method::GET, "/api/v1/orders", None).await;
    let (_, bob_list) = system.send_as(&bob, Method::GET, "/api/v1/orders", None).await;
    assert_eq!(
        (ada_list["items"].as_array().unwrap().len(), bob_list["items"].as_array().unwrap().len()),
        (1, 0)
    );
    assert_eq!(system.get("/api/v1/orders").await.0, 401);
    let (status, _) =
        system.send_as(&ada, Method::GET, "/api/v1/orders?customer_email=bob@example.com", None).await;
    assert_eq!(status, 422, "only admins filter by customer");
    let (_, by_email) =
        system.send_as(&admin, Method::GET, "/api/v1/orders?customer_email=ada@example.com", None).await;
    assert_eq!(by_email["items"].as_array().unwrap().len(), 1);

    // A guest order is readable with its access token, not by its id alone.
    let (status, guest) = system.order(&[(product, 1)], None).await;
    assert_eq!(status, 201);
    let guest_path = format!("/api/v1/orders/{}", guest["id"].as_str().unwrap());
    let token = guest["access_token"].as_str().unwrap();
    assert_eq!(system.get(&format!("{guest_path}?access_token={token}")).await.0, 200);
    assert_eq!(system.get(&guest_path).await.0, 404);

    // Tampered, expired and foreign tokens are 401.
    let mut parts: Vec<String> = ada.split('.').map(str::to_owned).collect();
    parts[1] = format!("{}x", parts[1]);
    let tampered = parts.join(".");
    let expired =
        mint_token(&test_token_keys(-120), uuid::Uuid::now_v7(), "ada@example.com", "Ada", Role::Admin);
    let other_key =
        platform::auth::SigningKey::from_pem(&platform::auth::generate_signing_key_pem()).unwrap();
    let other_policy = test_token_keys(600).policy().clone();
    let foreign = mint_token(
        &TokenKeys::issuer(other_key, vec![], other_policy).unwrap(),
        uuid::Uuid::now_v7(),
        "x@example.com",
        "X",
        Role::Admin,
    );
    for token in [&tampered, &expired, &foreign] {
        let (status, problem) = system.send_as(token, Method::GET, "/api/v1/orders", None).await;
        assert_eq!((status, problem["code"].as_str()), (401, Some("unauthorized")));
    }
    let (status, problem) =
        system.send_as(&foreign, Method::POST, "/api/v1/products", Some(&product_body)).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("unauthorized")),
        "a forged admin token changes nothing"
    );
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn accounts_refuse_weak_passwords_duplicates_and_wrong_credentials() {
    let system = System::start().await;
    let register = async |email: &str, password: &str| {
        system
            .post("/api/v1/auth/register", &json!({"email": email, "password": password, "name": "N"}))
            .await
    };
    let (status, problem) = register("weak@example.com", "short").await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (422, Some("password")));
    assert_eq!(problem["errors"][0]["message"], "must be at least 12 characters");
    let (status, _) = register("not-an-email", "a long enough passphrase").await;
    assert_eq!(status, 422);
    let (status, first) = register("Ada@Example.com", "a long enough passphrase").await;
    assert_eq!((status, first["email"].as_str()), (201, Some("ada@example.com")));
    // A taken email answers like a free one (no account oracle) and changes nothing.
    let (status, again) = register("ada@example.com", "another long passphrase").await;
    assert_eq!(
        (status, again["email"].as_str(), again["role"].as_str()),
        (201, Some("ada@example.com"), Some("customer"))
    );
    assert_ne!(again["id"], first["id"]);
    assert_eq!(
        system.count("SELECT count(*) AS n FROM order_api.users WHERE email = 'ada@example.com'").await,
        1
    );
    let (status, _) = system
        .post(
            "/api/v1/auth/login",
            &json!({"email": "ada@example.com", "password": "another long passphrase"}),
        )
        .await;
    assert_eq!(status, 401, "emails are case-insensitive: the second registration did not take the account");
    let login = async |password: &str| {
        system.post("/api/v1/auth/login", &json!({"email": "ada@example.com", "password": password})).await
    };
    assert_eq!(login("a long enough passphrase").await.0, 200);
    let (status, problem) = login("wrong passphrase here").await;
    assert_eq!((status, problem["code"].as_str()), (401, Some("invalid_credentials")));
    let (status, _) =
        system.post("/api/v1/auth/login", &json!({"email": "nobody@example.com", "password": "x"})).await;
    assert_eq!(status, 401);
    // The bootstrap admin exists once, and an admin cannot be registered through the API.
    assert_eq!(system.count("SELECT count(*) AS n FROM order_api.users WHERE role = 'admin'").await, 1);
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_keys_replay_refuse_changes_and_serialise_duplicates() {
    let system = System::start().await;
    let product = system.product("IDEM", "2.00", 100).await;
    let post = |key: &str, quantity: i64| {
        system
            .http
            .post(system.url("/api/v1/orders"))
            .header("idempotency-key", key)
            .json(&json!({"customer_name": "Ada", "customer_email": "ada@example.com", "items": [{"product_id": product, "quantity": quantity}]}))
            .send()
    };
    let first = post("key-1", 1).await.unwrap();
    assert_eq!(first.status().as_u16(), 201);
    let first_body: Value = first.json().await.unwrap();
    let again = post("key-1", 1).await.unwrap();
    assert_eq!(again.status().as_u16(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again_body: Value = again.json().await.unwrap();
    let mut without_token = first_body.clone();
    assert!(without_token.as_object_mut().unwrap().remove("access_token").is_some());
    assert_eq!(again_body, without_token, "the first answer, less the guest's token (shown once)");
    let different = post("key-1", 2).await.unwrap();
    assert_eq!(different.status().as_u16(), 422);
    assert_eq!(different.json::<Value>().await.unwrap()["code"], "idempotency_key_reused");
    let invalid = post("bad key with spaces", 1).await.unwrap();
    assert_eq!(invalid.status().as_u16(), 400);

    let racing = join_all((0..10).map(|_| post("key-2", 1))).await;
    let statuses: Vec<u16> = racing.into_iter().map(|r| r.unwrap().status().as_u16()).collect();
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
    assert!(statuses.contains(&201));
    assert_eq!(system.count("SELECT count(*) AS n FROM order_api.orders").await, 2, "one order per key");

    // Keys are scoped to the caller: another caller's same key is a new request.
    let token = customer(&system, "carol@example.com").await;
    let mine = system
        .http
        .post(system.url("/api/v1/orders"))
        .bearer_auth(&token)
        .header("idempotency-key", "key-1")
        .json(&order_body(product))
        .send()
        .await
        .unwrap();
    assert_eq!(mine.status().as_u16(), 201);
    assert!(mine.headers().get("idempotent-replayed").is_none());
    assert_eq!(system.count("SELECT count(*) AS n FROM order_api.orders").await, 3);
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pagination_walks_every_order_once_while_new_ones_arrive() {
    let system = System::start().await;
    let product = system.product("PAGE", "1.00", 1000).await;
    let mut existing = Vec::new();
    for _ in 0..25 {
        existing.push(system.order(&[(product, 1)], None).await.1["id"].as_str().unwrap().to_owned());
    }
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(after) => format!("/api/v1/orders?limit=7&starting_after={after}"),
            None => "/api/v1/orders?limit=7".to_owned(),
        };
        let (status, page) = system.admin_get(&path).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(page["items"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_owned()));
        // Orders keep arriving during the walk.
        system.order(&[(product, 1)], None).await;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let unique: std::collections::HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no order twice");
    for id in &existing {
        assert!(unique.contains(id), "order {id} was skipped");
    }
    system.finish().await;
}

fn history(order: &Value) -> Vec<String> {
    order["status_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap().to_owned())
        .collect()
}

fn cancelled_events(system: &System, id: &str) -> usize {
    system.events().iter().filter(|e| e["type"] == "order.cancelled" && e["subject"] == id).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_a_pending_order_emits_order_cancelled() {
    // No inventory running: orders stay pending.
    let system = System::start_with(Options { inventory_instances: 0, ..Default::default() }).await;
    let product = uuid::Uuid::now_v7();
    system
        .execute(&format!(
            "INSERT INTO order_api.catalog_products (id, sku, name, price, currency, available, active, version) \
             VALUES ('{product}', 'P', 'Pending product', 4.00, 'USD', 10, true, 1)"
        ))
        .await;
    let (_, order) = system.order(&[(product, 2)], None).await;
    let id = order["id"].as_str().unwrap();
    assert_eq!(order["status"], "pending");
    let (status, cancelled) = system.admin_post(&format!("/api/v1/orders/{id}/cancel"), &json!({})).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(history(&cancelled), ["pending", "cancelled"]);
    testkit::eventually("order.cancelled on the bus", SAGA_TIMEOUT, || async {
        (cancelled_events(&system, id) == 1).then_some(())
    })
    .await;
    let (status, problem) = system.admin_post(&format!("/api/v1/orders/{id}/cancel"), &json!({})).await;
    assert_eq!((status, problem["current_status"].as_str()), (409, Some("cancelled")));
    system
        .finish_with(|e| e.allow_queued_messages("inventory.inbox", "no inventory runs in this test"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancelling_is_allowed_before_shipping_and_refused_after() {
    let system = System::start().await;
    let product = system.product("CANCEL", "10.00", 10).await;

    // Confirmed → cancelled: the units go back on hand.
    let (_, order) = system.order(&[(product, 3)], None).await;
    let id = order["id"].as_str().unwrap().to_owned();
    system.order_until(&id, "confirmed", |o| o["status"] == "confirmed").await;
    testkit::eventually("stock committed", SAGA_TIMEOUT, || async {
        (system.product_view(product).await["stock"].as_i64() == Some(7)).then_some(())
    })
    .await;
    let (status, cancelled) = system.admin_post(&format!("/api/v1/orders/{id}/cancel"), &json!({})).await;
    assert_eq!((status, cancelled["status"].as_str()), (200, Some("cancelled")), "{cancelled}");
    assert_eq!(history(&cancelled), ["pending", "processing", "confirmed", "cancelled"]);
    testkit::eventually("the units restocked", SAGA_TIMEOUT, || async {
        let view = system.product_view(product).await;
        (view["stock"].as_i64() == Some(10) && view["available"].as_i64() == Some(10)).then_some(())
    })
    .await;
    assert_eq!(cancelled_events(&system, &id), 1);

    // Failed, cancelled, shipped and delivered orders cannot be cancelled; nothing changes.
    let (_, declined) = system.order(&[(product, 1)], Some("pm_card_declined")).await;
    let declined_id = declined["id"].as_str().unwrap().to_owned();
    system.order_until(&declined_id, "failed", |o| o["status"] == "failed").await;
    let (_, shipped) = system.order(&[(product, 1)], None).await;
    let shipped_id = shipped["id"].as_str().unwrap().to_owned();
    system.order_until(&shipped_id, "confirmed", |o| o["status"] == "confirmed").await;
    let (status, moved) = system
        .admin_post(&format!("/api/v1/orders/{shipped_id}/status"), &json!({"status": "shipped"}))
        .await;
    assert_eq!((status, moved["status"].as_str()), (200, Some("shipped")));
    let (status, problem) = system
        .admin_post(&format!("/api/v1/orders/{declined_id}/status"), &json!({"status": "delivered"}))
        .await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("illegal_transition")));
    for (order_id, state) in [(&declined_id, "failed"), (&id, "cancelled"), (&shipped_id, "shipped")] {
        let before = system.admin_get(&format!("/api/v1/orders/{order_id}")).await.1;
        let (status, problem) =
            system.admin_post(&format!("/api/v1/orders/{order_id}/cancel"), &json!({})).await;
        assert_eq!((status, problem["current_status"].as_str()), (409, Some(state)), "{problem}");
        let after = system.admin_get(&format!("/api/v1/orders/{order_id}")).await.1;
        // What a cancel would change (the delivery flags may still flip on their own).
        let state_of =
            |o: &Value| (o["status"].clone(), o["status_history"].clone(), o["updated_at"].clone());
        assert_eq!(state_of(&before), state_of(&after), "a refused cancel changes nothing");
    }
    let (status, delivered) = system
        .admin_post(&format!("/api/v1/orders/{shipped_id}/status"), &json!({"status": "delivered"}))
        .await;
    assert_eq!((status, delivered["status"].as_str()), (200, Some("delivered")));
    assert_eq!(system.admin_post(&format!("/api/v1/orders/{shipped_id}/cancel"), &json!({})).await.0, 409);
    let (status, _) = system
        .admin_post(&format!("/api/v1/orders/{shipped_id}/status"), &json!({"status": "pending"}))
        .await;
    assert_eq!(status, 422, "only shipped and delivered are manual moves");
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limits_cors_and_rate_limiting_answer_clearly() {
    let system = System::start_with(Options { rate_limit_per_second: 5.0, ..Default::default() }).await;
    let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
    let response = system
        .http
        .post(system.url("/api/v1/orders"))
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(response.json::<Value>().await.unwrap()["code"], "json_too_deep");
    let (status, problem) = system
        .post("/api/v1/orders", &json!({"customer_name": "A", "customer_email": "a@example.com", "customer_phone": "555-1234", "items": []}))
        .await;
    assert_eq!(status, 422);
    assert!(problem["errors"].as_array().unwrap().iter().any(|e| e["field"] == "customer_phone"));

    let preflight = system
        .http
        .request(Method::OPTIONS, system.url("/api/v1/orders"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status().as_u16(), 200);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "https://shop.example");
    let foreign = system
        .http
        .request(Method::OPTIONS, system.url("/api/v1/orders"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(foreign.headers().get("access-control-allow-origin").is_none());
    assert_eq!(foreign.status().as_u16(), 400, "a foreign origin's preflight is refused");
    let get = |origin: &'static str| {
        system.http.get(system.url("/api/v1/products")).header("origin", origin).send()
    };
    let allowed = get("https://shop.example").await.unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://shop.example");
    assert!(allowed.headers()["access-control-expose-headers"].to_str().unwrap().contains("retry-after"));
    let foreign = get("https://evil.example").await.unwrap();
    assert_eq!(foreign.status().as_u16(), 200, "served; the browser hides it from the page");
    assert!(foreign.headers().get("access-control-allow-origin").is_none());

    // 5 per second with a burst of 10: a quick run of requests is eventually refused.
    let mut limited = None;
    for _ in 0..30 {
        let response = system.http.get(system.url("/api/v1/products")).send().await.unwrap();
        if response.status().as_u16() == 429 {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("the rate limit answers 429");
    let wait: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    assert_eq!(limited.json::<Value>().await.unwrap()["code"], "rate_limited");
    system.finish().await;
}

/// A small property-based fuzzer: mutations of a valid order body (wrong types, huge and
/// negative numbers, missing and extra fields, deep nesting, odd strings) never yield a 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_fuzzed_order_body_yields_a_server_error() {
    use rand::{Rng, SeedableRng};
    let system = System::start().await;
    let product = system.product("FUZZ", "1.00", 100).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let odd_values = [
        json!(null),
        json!(true),
        json!(-1),
        json!(0),
        json!(1e308),
        json!(-9223372036854775808i64),
        json!(u64::MAX),
        json!(""),
        json!("\u{0}"),
        json!("😀".repeat(300)),
        json!([]),
        json!({}),
        json!([[[[1]]]]),
        json!("1e3"),
        json!(product),
        json!("00000000-0000-0000-0000-000000000000"),
        json!("pm_card_ok"),
        json!(1.5),
    ];
    let fields = ["customer_name", "customer_email", "customer_phone", "items", "payment_method", "extra"];
    let item_fields = ["product_id", "quantity", "price"];
    for round in 0..300 {
        let mut body = json!({"customer_name": "Ada", "customer_email": "ada@example.com", "items": [{"product_id": product, "quantity": 1}]});
        for _ in 0..rng.random_range(1..4) {
            let value = odd_values[rng.random_range(0..odd_values.len())].clone();
            if rng.random_bool(0.5) {
                body[fields[rng.random_range(0..fields.len())]] = value;
            } else if let Some(item) = body["items"].get_mut(0).filter(|item| item.is_object()) {
                item[item_fields[rng.random_range(0..item_fields.len())]] = value;
            }
        }
        if rng.random_bool(0.1) {
            body.as_object_mut().unwrap().remove(fields[rng.random_range(0..fields.len())]);
        }
        let response = system.http.post(system.url("/api/v1/orders")).json(&body).send().await.unwrap();
        let status = response.status().as_u16();
        assert!(status < 500, "round {round}: {status} for {body}");
        assert!(
            status == 201 || response.headers()["content-type"] == "application/problem+json",
            "round {round}"
        );
    }
    system.finish().await;
}
