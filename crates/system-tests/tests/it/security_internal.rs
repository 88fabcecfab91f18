//! Issue 9's leftovers, performed as an attacker would: a user's own token (an hour long, and
//! still valid after logout for every service but the gateway) sent straight to a service's
//! port; an internal token replayed at the gateway; a revoked session behind the gateway; a
//! guest reading its payment with its access token, and someone else trying; a guest's order
//! link leaking to webhook receivers.

use crate::support::{Options, SAGA_TIMEOUT, System, as_gateway, test_token_keys};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};
use testkit::{HttpReceiver, eventually};
use uuid::Uuid;

/// Registers `email` through the gateway and logs in; answers the bearer token.
async fn customer(system: &System, email: &str) -> String {
    register(system, email, "a long enough passphrase").await
}

async fn register(system: &System, email: &str, password: &str) -> String {
    let (status, body) = system
        .post("/api/v1/auth/register", &json!({"email": email, "password": password, "name": "Customer"}))
        .await;
    assert!((200..300).contains(&status), "register {email}: {status} {body}");
    login(system, email, password).await
}

async fn login(system: &System, email: &str, password: &str) -> String {
    let (status, body) =
        system.post("/api/v1/auth/login", &json!({"email": email, "password": password})).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// A call straight to a service's port (or anywhere), as `token`.
async fn direct(
    system: &System,
    token: Option<&str>,
    method: Method,
    url: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = system.http.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The claims of a JWT, unverified (the test reads what the gateway signed).
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_internal_users_tokens_are_refused_on_service_ports_and_work_through_the_gateway() {
    let mut system = System::start().await;
    let payment_url = system.start_payment().await;
    let ada = customer(&system, "ada@example.com").await;
    let admin = system.admin_token.clone();
    let product = system.product("INTERNAL-1", "10.00", 5).await;
    let body = json!({"items": [{"product_id": product, "quantity": 1}], "payment_method": "pm_card_ok"});
    let (status, order) = system.send_as(&ada, Method::POST, "/api/v1/orders", Some(&body)).await;
    assert_eq!(status, 201, "{order}");
    let order = order["id"].as_str().unwrap().to_owned();
    let payment_path = format!("/api/v1/orders/{order}/payment");
    eventually("the payment", SAGA_TIMEOUT, || async {
        (system.send_as(&ada, Method::GET, &payment_path, None).await.0 == 200).then_some(())
    })
    .await;

    // Before the fix each service accepted the user's own token (aud = JWT_AUDIENCE, an hour
    // long, never checked for revocation there): an admin token stolen once opened inventory,
    // the notifier and the dispatcher directly, whatever happened to the session afterwards.
    let new_product =
        json!({"sku": "INTERNAL-2", "name": "Two", "price": "1.00", "currency": "USD", "stock": 1});
    let calls = [
        (
            &admin,
            Method::POST,
            format!("{}/products", system.inventory),
            "/api/v1/products".to_owned(),
            Some(&new_product),
        ),
        (
            &admin,
            Method::GET,
            format!("{}/notifications", system.notifier),
            "/api/v1/notifications".to_owned(),
            None,
        ),
        (
            &admin,
            Method::GET,
            format!("{}/webhook-endpoints", system.dispatcher_url),
            "/api/v1/webhook-endpoints".to_owned(),
            None,
        ),
        (&ada, Method::GET, format!("{payment_url}/orders/{order}/payment"), payment_path.clone(), None),
        (&admin, Method::GET, format!("{payment_url}/orders/{order}/payment"), payment_path.clone(), None),
    ];
    for (token, method, service_url, gateway_path, body) in &calls {
        let (status, problem) = direct(&system, Some(token), method.clone(), service_url, *body).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (401, Some("unauthorized")),
            "{method} {service_url}: {problem}"
        );
        let (status, answer) = system.send_as(token, method.clone(), gateway_path, *body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {gateway_path} through the gateway: {status} {answer}"
        );
    }
    assert_eq!(
        system.count("SELECT count(*) AS n FROM inventory.products WHERE sku = 'INTERNAL-2'").await,
        1
    );

    // The other way round: a token signed for the services (as one could capture inside) is
    // refused by every gateway route.
    let inside = as_gateway(&admin);
    for path in ["/api/v1/notifications", "/api/v1/orders", "/api/v1/auth/me", "/api/v1/admin/stuck-orders"] {
        let (status, problem) = system.send_as(&inside, Method::GET, path, None).await;
        assert_eq!((status, problem["code"].as_str()), (401, Some("unauthorized")), "{path}: {problem}");
    }
    let (status, _) = system.send_as(&inside, Method::POST, "/api/v1/products", Some(&new_product)).await;
    assert_eq!(status, 401);
    system.finish().await;
}

/// The gateway's notifier upstream in `security_internal_logout_*`: a receiver that records the
/// internal token the gateway sends (a `fn` setting hook cannot capture the port).
static NOTIFIER_STAND_IN: AtomicU16 = AtomicU16::new(0);
const SHORT_TTL: i64 = 2;

fn via_stand_in(settings: &mut order_api::settings::Settings) {
    settings.jwt_internal_ttl_seconds = SHORT_TTL;
    settings.notifier_url = format!("http://127.0.0.1:{}", NOTIFIER_STAND_IN.load(Ordering::SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_internal_logout_ends_forwarded_calls_at_once_and_minted_internal_tokens_within_their_ttl() {
    let stand_in = HttpReceiver::start().await.unwrap();
    stand_in.respond_with_body(r#"{"items": []}"#);
    NOTIFIER_STAND_IN.store(stand_in.port, Ordering::SeqCst);
    let system = System::start_with(Options { gateway: via_stand_in, ..Options::default() }).await;
    let product = system.product("REVOKED-1", "10.00", 5).await;
    // A second admin (an operator's UPDATE), so logging it out leaves the harness's admin alone.
    let (email, password) = ("rosa@example.com", "a long enough passphrase");
    register(&system, email, password).await;
    system.execute(&format!("UPDATE order_api.users SET role = 'admin' WHERE email = '{email}'")).await;
    let rosa = login(&system, email, password).await;
    let rosa_id = claims_of(&rosa)["sub"].clone();

    // What the gateway sends the notifier for Rosa: her claims, for the services' audience, for
    // SHORT_TTL seconds (60 by default, see the settings and platform::auth's tests).
    let (status, _) = system.send_as(&rosa, Method::GET, "/api/v1/notifications", None).await;
    assert_eq!(status, 200);
    let seen = stand_in.received();
    assert_eq!(seen.len(), 1);
    let authorization = seen[0].headers.get("authorization").cloned().unwrap_or_default();
    let minted = authorization.strip_prefix("Bearer ").unwrap().to_owned();
    assert_ne!(minted, rosa, "the user's own token was passed on");
    let claims = claims_of(&minted);
    assert_eq!(
        (claims["aud"].as_str(), claims["role"].as_str()),
        (Some("orders-internal"), Some("admin")),
        "{claims}"
    );
    assert_eq!(claims["sub"], rosa_id);
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!(lifetime == SHORT_TTL && lifetime <= 60, "{claims}");
    // It is what the real notifier accepts, and the gateway refuses.
    let notifications = format!("{}/notifications", system.notifier);
    assert_eq!(direct(&system, Some(&minted), Method::GET, &notifications, None).await.0, 200);
    assert_eq!(system.send_as(&minted, Method::GET, "/api/v1/notifications", None).await.0, 401);

    let (status, _) = system.send_as(&rosa, Method::POST, "/api/v1/auth/logout", None).await;
    assert_eq!(status, 204);
    // At once: nothing is forwarded for the revoked session, on admin routes or open ones
    // (before the fix an open route passed the revoked token on and inventory took it).
    for path in [
        "/api/v1/notifications".to_owned(),
        "/api/v1/webhook-endpoints".to_owned(),
        format!("/api/v1/products/{product}"),
    ] {
        let (status, problem) = system.send_as(&rosa, Method::GET, &path, None).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (401, Some("unauthorized")),
            "{path} after logout: {problem}"
        );
    }
    assert_eq!(stand_in.received().len(), 1, "a revoked session's call was forwarded");
    // Around the gateway the revoked user token is worth nothing either (before the fix the
    // services took it for the rest of its hour).
    for url in [notifications.clone(), format!("{}/webhook-endpoints", system.dispatcher_url)] {
        assert_eq!(direct(&system, Some(&rosa), Method::GET, &url, None).await.0, 401, "{url}");
    }
    // The internal token minted before the logout lives out its short life, then dies.
    let started = Instant::now();
    eventually("the minted internal token to expire", Duration::from_secs(30), || async {
        (direct(&system, Some(&minted), Method::GET, &notifications, None).await.0 == 401).then_some(())
    })
    .await;
    // Its lifetime plus the verifier's 5 s clock leeway, with room for a slow machine.
    assert!(started.elapsed() <= Duration::from_secs(SHORT_TTL as u64 + 5 + 5), "{:?}", started.elapsed());
    system.finish().await;
}

/// A guest order paid at once; answers its id and access token.
async fn guest_order(system: &System, product: Uuid) -> (String, String) {
    let (status, order) = system.order(&[(product, 1)], Some("pm_card_ok")).await;
    assert_eq!(status, 201, "{order}");
    (order["id"].as_str().unwrap().to_owned(), order["access_token"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_internal_a_guest_reads_its_orders_payment_with_its_access_token_only() {
    let mut system = System::start().await;
    let payment_url = system.start_payment().await;
    let product = system.product("GUEST-PAY", "12.00", 10).await;
    let (id, token) = guest_order(&system, product).await;
    let (other_id, other_token) = guest_order(&system, product).await;
    let path = format!("/api/v1/orders/{id}/payment");

    // Before: 404 for the guest whatever it sent (payment knew no guest), so a guest could not
    // see its own payment.
    let payment = eventually("the guest's payment", SAGA_TIMEOUT, || async {
        let (status, body) = system.get(&format!("{path}?access_token={token}")).await;
        (status == 200 && body["status"] == "succeeded").then_some(body)
    })
    .await;
    assert_eq!(payment["order_id"].as_str(), Some(id.as_str()), "{payment}");
    let with_header =
        system.http.get(system.url(&path)).header("Order-Access-Token", &token).send().await.unwrap();
    assert_eq!(with_header.status().as_u16(), 200);

    // Anyone else: the same 404 as an unknown order, with nothing of the payment.
    let mallory = customer(&system, "mallory@example.com").await;
    let wrong = URL_SAFE_NO_PAD.encode([7u8; 32]);
    for (caller, query) in [
        (None, String::new()),
        (None, format!("?access_token={wrong}")),
        (None, format!("?access_token={other_token}")),
        (Some(&mallory), String::new()),
        (Some(&mallory), format!("?access_token={wrong}")),
    ] {
        let url = format!("{path}{query}");
        let (status, body) = match caller {
            Some(token) => system.send_as(token, Method::GET, &url, None).await,
            None => system.get(&url).await,
        };
        assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "{url}: {body}");
        assert!(body.get("amount").is_none(), "{body}");
    }
    // Mallory with the right access token reads it too: the token is the key, as for the order.
    let (status, _) =
        system.send_as(&mallory, Method::GET, &format!("{path}?access_token={token}"), None).await;
    assert_eq!(status, 200);

    // Payment's own check, on its port: the gateway's token for one guest order opens that
    // order alone, never another guest's nor an account's.
    let keys = test_token_keys(60);
    let for_order = |order: &str| keys.issue_guest_internal(order.parse::<Uuid>().unwrap()).unwrap();
    let direct_path = format!("{payment_url}/orders/{id}/payment");
    assert_eq!(direct(&system, Some(&for_order(&id)), Method::GET, &direct_path, None).await.0, 200);
    let (status, body) = direct(&system, Some(&for_order(&other_id)), Method::GET, &direct_path, None).await;
    assert_eq!(status, 404, "another guest order's token: {body}");
    let ada = customer(&system, "ada@example.com").await;
    let body = json!({"items": [{"product_id": product, "quantity": 1}], "payment_method": "pm_card_ok"});
    let (_, own) = system.send_as(&ada, Method::POST, "/api/v1/orders", Some(&body)).await;
    let own = own["id"].as_str().unwrap().to_owned();
    let own_path = format!("/api/v1/orders/{own}/payment");
    eventually("ada's payment", SAGA_TIMEOUT, || async {
        (system.send_as(&ada, Method::GET, &own_path, None).await.0 == 200).then_some(())
    })
    .await;
    let (status, body) = direct(
        &system,
        Some(&for_order(&own)),
        Method::GET,
        &format!("{payment_url}/orders/{own}/payment"),
        None,
    )
    .await;
    assert_eq!(status, 404, "a guest token naming an account's order: {body}");
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_internal_a_guest_orders_webhook_carries_no_order_link() {
    let system = System::start().await;
    let (status, endpoint) = system
        .admin_post(
            "/api/v1/webhook-endpoints",
            &json!({"url": system.receiver.url("/hooks"), "event_types": ["order.confirmed"]}),
        )
        .await;
    assert_eq!(status, 201, "{endpoint}");
    let product = system.product("LINKLESS", "5.00", 5).await;
    let (status, order) = system.order(&[(product, 1)], Some("pm_card_ok")).await;
    assert_eq!(status, 201, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    let created_token = order["access_token"].as_str().unwrap().to_owned();

    // The event on the bus carries the guest's link, for the invoice: that is the leak.
    let event = eventually("order.confirmed", SAGA_TIMEOUT, || async {
        system
            .events()
            .into_iter()
            .find(|e| e["type"] == "order.confirmed" && e["data"]["order_id"] == id.as_str())
    })
    .await;
    let link =
        event["data"]["order_link"].as_str().expect("a guest's confirmation carries its link").to_owned();
    let link_token = link.split("access_token=").nth(1).unwrap().to_owned();
    assert!(!link_token.is_empty());

    let delivered = eventually("the webhook delivery", SAGA_TIMEOUT, || async {
        system.receiver.received().into_iter().find(|r| String::from_utf8_lossy(&r.body).contains(&id))
    })
    .await;
    let body = String::from_utf8_lossy(&delivered.body).into_owned();
    let sent: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (sent["type"].as_str(), sent["id"].as_str()),
        (Some("order.confirmed"), event["id"].as_str()),
        "{body}"
    );
    assert!(sent["data"].get("order_link").is_none(), "{body}");
    for secret in [&link_token, &created_token] {
        assert!(!body.contains(secret.as_str()), "the webhook body carries a guest access token: {body}");
    }
    assert!(!body.contains("access_token"), "{body}");
    system.finish().await;
}
