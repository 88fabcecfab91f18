//! Issue 9, findings 1–3 and the payment half of 4, performed as an attacker would: walking out
//! of a forwarded route with dot segments, reading or completing another customer's payment
//! through the gateway and around it, production settings that would run the simulator or a
//! public callback secret, and an unpaid order holding stock while it waits on the customer.

use crate::support::{Options, SAGA_TIMEOUT, System, as_gateway};
use reqwest::Method;
use serde_json::{Value, json};
use testkit::eventually;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Registers `email` (through the gateway) and logs in; answers the bearer token.
async fn customer(system: &System, email: &str) -> String {
    let password = "a long enough passphrase";
    let (status, body) = system
        .post("/api/v1/auth/register", &json!({"email": email, "password": password, "name": "Customer"}))
        .await;
    assert!((200..300).contains(&status), "register {email}: {status} {body}");
    let (status, body) =
        system.post("/api/v1/auth/login", &json!({"email": email, "password": password})).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// Places an order as the customer holding `token`; answers its id.
async fn order_as(system: &System, token: &str, product: Uuid, quantity: i64, method: &str) -> String {
    let body = json!({"items": [{"product_id": product, "quantity": quantity}], "payment_method": method});
    let (status, order) = system.send_as(token, Method::POST, "/api/v1/orders", Some(&body)).await;
    assert_eq!(status, 201, "{order}");
    order["id"].as_str().unwrap().to_owned()
}

/// The order's payment as `token` sees it through the gateway, once it is `status`.
async fn payment_once(system: &System, token: &str, order_id: &str, status: &str) -> Value {
    let path = format!("/api/v1/orders/{order_id}/payment");
    eventually(&format!("the payment to be {status}"), SAGA_TIMEOUT, || {
        let path = path.clone();
        async move {
            let (code, body) = system.send_as(token, Method::GET, &path, None).await;
            (code == 200 && body["status"] == status).then_some(body)
        }
    })
    .await
}

/// One raw HTTP/1.1 request, the path sent byte for byte: an HTTP client library would resolve
/// `..` and `%2e%2e` before sending, which is exactly what an attacker does not do.
async fn raw_get(base: &str, path: &str, token: Option<&str>) -> (u16, String, Value) {
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-type").then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    // Bodies here are small JSON answers, sent whole or chunked once.
    let json = serde_json::from_str(body)
        .or_else(|_| serde_json::from_str(body.lines().nth(1).unwrap_or_default()))
        .unwrap_or(Value::Null);
    (status, content_type, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_payments_dot_segments_in_any_encoding_are_refused_and_unlisted_routes_reach_nothing() {
    let mut system = System::start().await;
    let payment_url = system.start_payment().await;
    let ada = customer(&system, "ada@example.com").await;
    let mallory = customer(&system, "mallory@example.com").await;
    let product = system.product("TRAVERSAL", "20.00", 5).await;
    let order = order_as(&system, &ada, product, 1, "pm_card_ok").await;
    payment_once(&system, &ada, &order, "succeeded").await;

    // The attacks of the review, and their other spellings. Before the fix the first answered
    // 200 with Ada's payment, and the metrics probe reached inventory's internals.
    for path in [
        format!("/api/v1/payments/%2e%2e/orders/{order}/payment"),
        format!("/api/v1/payments/%2E%2E/orders/{order}/payment"),
        format!("/api/v1/payments/%2E./orders/{order}/payment"),
        format!("/api/v1/payments/.%2e/orders/{order}/payment"),
        format!("/api/v1/payments/../orders/{order}/payment"),
        format!("/api/v1/payments/%252e%252e/orders/{order}/payment"),
        format!("/api/v1/payments/x%2f..%2forders/{order}/payment"),
        "/api/v1/products/%2e%2e/metrics".to_owned(),
        "/api/v1/products/../metrics".to_owned(),
        "/api/v1/products/%2e%2e%2fmetrics".to_owned(),
        "/api/v1/products/.%2E/health/ready".to_owned(),
        "/api/v1/webhook-endpoints/%2e%2e/metrics".to_owned(),
        "/api/v1/notifications/%2e%2e/metrics".to_owned(),
        "/api/v1/webhook-deliveries/%2e%2e/metrics".to_owned(),
    ] {
        let (status, content_type, problem) = raw_get(&system.gateway, &path, Some(&mallory)).await;
        assert_eq!(
            (status, content_type.as_str(), problem["code"].as_str()),
            (400, "application/problem+json", Some("invalid_path")),
            "{path}: {problem}"
        );
    }

    // Paths the gateway does not list reach no service, whatever they are.
    for path in [
        format!("/api/v1/payments/orders/{order}/payment"),
        "/api/v1/payments/callbacks/paypal".to_owned(),
        "/api/v1/payments/anything".to_owned(),
        format!("/api/v1/products/{product}/metrics"),
        "/api/v1/products/metrics".to_owned(),
        "/api/v1/notifications/metrics".to_owned(),
        "/api/v1/webhook-deliveries/metrics".to_owned(),
    ] {
        let (status, content_type, body) = raw_get(&system.gateway, &path, Some(&mallory)).await;
        assert_eq!((status, content_type.as_str()), (404, "application/problem+json"), "{path}: {body}");
        assert!(body.get("id").is_none() && body.get("status").is_some_and(Value::is_u64), "{path}: {body}");
    }

    // The payment service itself: another customer's token opens nothing, even on its own port,
    // not even as the gateway would send it; users' own tokens are refused there outright.
    let direct = format!("/orders/{order}/payment");
    let (status, _, body) = raw_get(&payment_url, &direct, Some(&as_gateway(&mallory))).await;
    assert_eq!(status, 404, "another customer's payment, directly at payment: {body}");
    assert!(body.get("amount").is_none(), "{body}");
    assert_eq!(raw_get(&payment_url, &direct, None).await.0, 401);
    assert_eq!(raw_get(&payment_url, &direct, Some(&ada)).await.0, 401, "a user's own token");
    let (status, _, mine) = raw_get(&payment_url, &direct, Some(&as_gateway(&ada))).await;
    assert_eq!((status, mine["status"].as_str()), (200, Some("succeeded")), "the owner sees it");
    let (status, _, theirs) = raw_get(&system.gateway, &format!("/api/v1{direct}"), Some(&mallory)).await;
    assert_eq!(status, 404, "another customer's payment through the gateway: {theirs}");
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_payments_only_the_orders_customer_or_an_admin_acts_at_the_simulator() {
    let mut system = System::start().await;
    let payment_url = system.start_payment().await;
    let ada = customer(&system, "ada@example.com").await;
    let mallory = customer(&system, "mallory@example.com").await;
    let product = system.product("3DS-OWNER", "30.00", 5).await;
    let order = order_as(&system, &ada, product, 1, "pm_card_requires_action").await;
    let waiting = payment_once(&system, &ada, &order, "requires_action").await;
    let payment_id = waiting["id"].as_str().unwrap();
    let complete = format!("/payments/simulator/{payment_id}/complete");
    let fail = format!("/payments/simulator/{payment_id}/fail");

    // Before the fix anyone, logged in or not, could confirm Ada's order without paying.
    for path in [&complete, &fail] {
        let gateway = format!("/api/v1{path}");
        let (status, body) = system.post(&gateway, &json!({})).await;
        assert_eq!(status, 401, "anonymous through the gateway: {body}");
        let (status, body) = system.send_as(&mallory, Method::POST, &gateway, Some(&json!({}))).await;
        assert_eq!(status, 404, "another customer through the gateway: {body}");
        let around = system.http.post(format!("{payment_url}{path}")).send().await.unwrap();
        assert_eq!(around.status().as_u16(), 401, "anonymous at payment's port");
        let around =
            system.http.post(format!("{payment_url}{path}")).bearer_auth(&mallory).send().await.unwrap();
        assert_eq!(around.status().as_u16(), 401, "another customer's own token at payment's port");
        let inside = as_gateway(&mallory);
        let around =
            system.http.post(format!("{payment_url}{path}")).bearer_auth(inside).send().await.unwrap();
        assert_eq!(around.status().as_u16(), 404, "another customer at payment's port");
    }
    let still = payment_once(&system, &ada, &order, "requires_action").await;
    assert_eq!(still["history"].as_array().unwrap().len(), 3, "nothing moved: {still}");
    let (_, view) = system.send_as(&ada, Method::GET, &format!("/api/v1/orders/{order}"), None).await;
    assert_eq!(view["status"], "processing", "the order is not confirmed");

    // The customer who placed the order completes it.
    let (status, body) =
        system.send_as(&ada, Method::POST, &format!("/api/v1{complete}"), Some(&json!({}))).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("succeeded")), "{body}");
    eventually("the order to be confirmed", SAGA_TIMEOUT, || async {
        let (_, view) = system.send_as(&ada, Method::GET, &format!("/api/v1/orders/{order}"), None).await;
        (view["status"] == "confirmed").then_some(())
    })
    .await;
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_payments_an_order_left_waiting_on_the_customer_fails_with_payment_timeout_and_frees_its_stock()
 {
    let options = Options { payment_action_timeout_ms: 1500, ..Default::default() };
    let system = System::start_with(options).await;
    let product = system.product("HOARD", "10.00", 5).await;
    // The abuse: a guest order that never pays, holding most of the stock.
    let (status, order) = system.order(&[(product, 4)], Some("pm_card_no_callback")).await;
    assert_eq!(status, 201, "{order}");
    let id = order["id"].as_str().unwrap().to_owned();
    let failed = system.terminal(&id).await;
    assert_eq!(
        (failed["status"].as_str(), failed["failure_reason"].as_str()),
        (Some("failed"), Some("payment_timeout")),
        "{failed}"
    );
    eventually("the stock to be released", SAGA_TIMEOUT, || async {
        let view = system.product_view(product).await;
        (view["available"] == 5 && view["stock"] == 5).then_some(())
    })
    .await;
    let (_, payment) = system.admin_get(&format!("/api/v1/orders/{id}/payment")).await;
    assert_eq!(
        (payment["status"].as_str(), payment["failure_code"].as_str()),
        (Some("failed"), Some("payment_timeout"))
    );
    let events = system.events();
    let of = |kind: &str| -> Vec<Value> {
        events.iter().filter(|e| e["type"] == kind && e["subject"] == id.as_str()).cloned().collect()
    };
    assert_eq!(of("stock.reserved").len(), 1, "the stock was held while the customer was away");
    assert_eq!(of("payment.failed")[0]["data"]["code"], "payment_timeout");
    let order_failed = of("order.failed");
    assert_eq!(order_failed.len(), 1);
    assert_eq!(order_failed[0]["data"]["reason"], "payment_timeout", "the contract's reason, end to end");
    let history: Vec<&str> = failed["status_history"]
        .as_array()
        .map(|h| h.iter().filter_map(|s| s["status"].as_str()).collect())
        .unwrap_or_default();
    assert!(history.contains(&"processing"), "it waited with its stock reserved: {history:?}");
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_payments_production_settings_refuse_the_simulator_and_public_or_short_callback_secrets() {
    // What a production start with the old defaults looked like: the simulator, nobody asked.
    let defaults = payment::settings::Settings::load().unwrap();
    assert!(!defaults.payment_simulator_enabled, "the simulator is off unless switched on");
    let refusal = async |settings: payment::settings::Settings| {
        let built = payment::startup::build(
            settings,
            messaging::ConsumerOptions::new(payment::SERVICE),
            CancellationToken::new(),
        )
        .await;
        built.err().map(|e| e.to_string()).unwrap_or_default()
    };
    let message = refusal(defaults.clone()).await;
    assert!(
        message.contains("payment_provider") && message.contains("PAYMENT_SIMULATOR_ENABLED=true"),
        "the refusal says what to set: {message}"
    );
    assert!(!message.contains('\n'), "one line: {message}");

    let stripe = |secret: &str| payment::settings::Settings {
        payment_provider: "stripe".into(),
        stripe_api_key: platform::settings::Secret::new("sk_live_example"),
        payment_webhook_secret: platform::settings::Secret::new(secret),
        ..defaults.clone()
    };
    for secret in ["", "whsec_simulated_local_only", "whsec_too_short"] {
        let message = refusal(stripe(secret)).await;
        assert!(message.contains("payment_webhook_secret"), "{secret:?} was accepted: {message}");
    }
}

#[test]
fn security_payments_production_runs_stripe_with_its_secrets_from_the_secret_and_no_public_fallback() {
    let production = crate::deploy::render("deploy/k8s/overlays/production");
    let config = |name: &str| production[&("ConfigMap".to_owned(), name.to_owned())]["data"].clone();
    assert_eq!(config("payment-config")["PAYMENT_PROVIDER"].as_str(), Some("stripe"));
    for service in ["payment", "order-api"] {
        assert!(
            config(&format!("{service}-config")).get("PAYMENT_SIMULATOR_ENABLED").is_none(),
            "{service}: the simulator is never enabled in production"
        );
    }
    let deployment = &production[&("Deployment".to_owned(), "payment".to_owned())];
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"].as_sequence().unwrap();
    for (name, key) in
        [("PAYMENT_WEBHOOK_SECRET", "payment-webhook-secret"), ("STRIPE_API_KEY", "stripe-api-key")]
    {
        let var = env.iter().find(|v| v["name"].as_str() == Some(name)).unwrap_or_else(|| panic!("{name}"));
        let secret = &var["valueFrom"]["secretKeyRef"];
        assert_eq!((secret["name"].as_str(), secret["key"].as_str()), (Some("orders-secrets"), Some(key)));
        assert_ne!(secret["optional"].as_bool(), Some(true), "{name} is required");
    }
    let root = testkit::repo_root();
    for file in ["docker-compose.yml", "scripts/run.sh", "deploy/README.md"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        assert!(!text.contains("whsec_simulated_local_only"), "{file} falls back to the public secret");
    }
    let compose: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(root.join("docker-compose.yml")).unwrap()).unwrap();
    let secret = compose["services"]["payment"]["environment"]["PAYMENT_WEBHOOK_SECRET"].as_str().unwrap();
    assert!(secret.starts_with("${PAYMENT_WEBHOOK_SECRET:?"), "compose requires the secret: {secret}");
}
