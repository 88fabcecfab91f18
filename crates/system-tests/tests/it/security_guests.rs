//! Issue 9, findings 4 (guest abuse, but for the payment hold time), 6 (idempotency records),
//! 7 (guest order access), 8 (login brute force, client addresses) and the low items on
//! registration and the gateway's /metrics, each performed as an attacker would, through the
//! public gateway.

use crate::support::{Options, SAGA_TIMEOUT, System};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;
use testkit::eventually;
use uuid::Uuid;

const PASSWORD: &str = "a long enough passphrase";

async fn customer(system: &System, email: &str) -> String {
    let (status, body) = system
        .post("/api/v1/auth/register", &json!({"email": email, "password": PASSWORD, "name": "Customer"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) =
        system.post("/api/v1/auth/login", &json!({"email": email, "password": PASSWORD})).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

fn guest_order(product: Uuid, method: &str) -> Value {
    json!({"customer_name": "Guest", "customer_email": "guest@example.com",
           "items": [{"product_id": product, "quantity": 1}], "payment_method": method})
}

/// A request as a guest behind the (trusted) proxy at 127.0.0.1 that says the client is `client`.
async fn as_client(
    system: &System,
    client: &str,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut request =
        system.http.request(method, system.url(path)).header("x-forwarded-for", client).json(body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.send().await.unwrap()
}

fn trusting_localhost(settings: &mut order_api::settings::Settings) {
    settings.trusted_proxies = "127.0.0.1/32".into();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_guests_a_guest_order_opens_only_with_its_token_and_ids_reveal_nothing() {
    let system = System::start().await;
    let product = system.product("GUEST-TOKEN", "5.00", 100).await;
    let ada = customer(&system, "ada@example.com").await;
    let bob = customer(&system, "bob@example.com").await;

    let (status, guest) =
        system.post("/api/v1/orders", &guest_order(product, "pm_card_requires_action")).await;
    assert_eq!(status, 201, "{guest}");
    let token = guest["access_token"].as_str().expect("the creation answer carries the token").to_owned();
    assert!(token.len() >= 22, "at least 128 bits: {token}");
    let path = format!("/api/v1/orders/{}", guest["id"].as_str().unwrap());
    // Only its hash is stored.
    let stored = system
        .count(&format!(
            "SELECT count(*) AS n FROM order_api.order_access_tokens WHERE token_hash = sha256(convert_to('{token}', 'UTF8'))"
        ))
        .await;
    assert_eq!(stored, 1);

    // The id alone opens nothing, for anyone: the same 404 as an id that does not exist.
    let unknown = system.get(&format!("/api/v1/orders/{}", Uuid::now_v7())).await;
    assert_eq!((unknown.0, unknown.1["code"].as_str()), (404, Some("not_found")));
    let (status, problem) = system.get(&path).await;
    assert_eq!((status, problem["code"].clone()), (404, unknown.1["code"].clone()), "{problem}");
    assert_eq!(system.send_as(&bob, Method::GET, &path, None).await.0, 404, "another customer");
    assert_eq!(system.get(&format!("{path}?access_token=not-the-token")).await.0, 404);
    let (status, read) = system.get(&format!("{path}?access_token={token}")).await;
    assert_eq!(status, 200, "{read}");
    assert!(read.get("access_token").is_none(), "the token is shown once: {read}");
    let by_header =
        system.http.get(system.url(&path)).header("order-access-token", &token).send().await.unwrap();
    assert_eq!(by_header.status().as_u16(), 200);

    // An account's order: 404 without a token, exactly like an unknown id (no 401 oracle).
    let (status, own) = system
        .send_as(
            &ada,
            Method::POST,
            "/api/v1/orders",
            Some(&json!({"items": [{"product_id": product, "quantity": 1}]})),
        )
        .await;
    assert_eq!(status, 201, "{own}");
    assert!(own.get("access_token").is_none(), "account orders need no token");
    let own_path = format!("/api/v1/orders/{}", own["id"].as_str().unwrap());
    let (status, problem) = system.get(&own_path).await;
    assert_eq!((status, problem["code"].clone()), (404, unknown.1["code"].clone()));
    assert_eq!(system.post(&format!("{own_path}/cancel"), &json!({})).await.0, 404);
    assert_eq!(system.post(&format!("/api/v1/orders/{}/cancel", Uuid::now_v7()), &json!({})).await.0, 404);

    // Cancelling a guest order needs its token too.
    assert_eq!(system.post(&format!("{path}/cancel"), &json!({})).await.0, 404);
    assert_eq!(system.send_as(&bob, Method::POST, &format!("{path}/cancel"), Some(&json!({}))).await.0, 404);
    let (status, cancelled) = system.post(&format!("{path}/cancel?access_token={token}"), &json!({})).await;
    assert_eq!((status, cancelled["status"].as_str()), (200, Some("cancelled")), "{cancelled}");
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_guests_the_invoice_link_opens_the_guest_order_and_a_guest_phone_gets_no_sms() {
    let system = System::start().await;
    let product = system.product("GUEST-INVOICE", "5.00", 100).await;
    let mut body = guest_order(product, "pm_card_ok");
    body["customer_phone"] = json!("+14155550123");
    let (status, guest) = system.post("/api/v1/orders", &body).await;
    assert_eq!(status, 201, "{guest}");
    let id = guest["id"].as_str().unwrap().to_owned();
    let ada = customer(&system, "ada@example.com").await;
    let with_phone =
        json!({"customer_phone": "+14155550199", "items": [{"product_id": product, "quantity": 1}]});
    let (status, own) = system.send_as(&ada, Method::POST, "/api/v1/orders", Some(&with_phone)).await;
    assert_eq!(status, 201, "{own}");
    let own_id = own["id"].as_str().unwrap().to_owned();

    let confirmed = eventually("both orders confirmed", SAGA_TIMEOUT, || async {
        let events: Vec<Value> =
            system.events().into_iter().filter(|e| e["type"] == "order.confirmed").collect();
        (events.len() == 2).then_some(events)
    })
    .await;
    let of = |order: &str| confirmed.iter().find(|e| e["data"]["order_id"] == order).unwrap()["data"].clone();
    let (guest_event, own_event) = (of(&id), of(&own_id));
    assert!(
        guest_event["customer"].get("phone").is_none(),
        "an unverified guest number never leaves the gateway"
    );
    assert_eq!(own_event["customer"]["phone"], "+14155550199");
    assert!(own_event.get("order_link").is_none(), "an account's order has no token link");

    // The link in the invoice opens the order (it carries a token of its own).
    let link = guest_event["order_link"].as_str().expect("a guest's confirmation carries its link");
    let path = &link[link.find("/api/v1/").unwrap()..];
    assert!(path.starts_with(&format!("/api/v1/orders/{id}?access_token=")), "{link}");
    let (status, read) = system.get(path).await;
    assert_eq!((status, read["status"].as_str()), (200, Some("confirmed")), "{read}");
    let mail = eventually("the guest's invoice", SAGA_TIMEOUT, || async {
        system.smtp.received().into_iter().find(|m| m.header("subject").is_some_and(|s| s.contains(&id)))
    })
    .await;
    assert!(mail.data.contains("View or cancel your order"), "{}", mail.data);

    // The guest's number gets nothing; the account's does.
    let shared = &system;
    let channels = |order: String| async move {
        eventually("the notifications to settle", SAGA_TIMEOUT, || {
            let order = order.clone();
            async move {
                let (_, body) = shared.admin_get(&format!("/api/v1/notifications?order_id={order}")).await;
                let items = body["items"].as_array()?.clone();
                let mut channels: Vec<String> =
                    items.iter().filter_map(|n| n["channel"].as_str().map(str::to_owned)).collect();
                channels.sort();
                items
                    .iter()
                    .all(|n| n["status"] == "sent" || n["status"] == "logged")
                    .then_some(channels)
                    .filter(|c| !c.is_empty())
            }
        })
        .await
    };
    assert_eq!(channels(own_id).await, ["email", "sms"]);
    assert_eq!(channels(id).await, ["email"], "no SMS to a guest's unverified number");
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_guests_an_account_order_cannot_send_mail_to_someone_else() {
    let system = System::start().await;
    let product = system.product("GUEST-EMAIL", "5.00", 100).await;
    let ada = customer(&system, "ada@example.com").await;
    let elsewhere =
        json!({"customer_email": "victim@example.org", "items": [{"product_id": product, "quantity": 1}]});
    let (status, problem) = system.send_as(&ada, Method::POST, "/api/v1/orders", Some(&elsewhere)).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "customer_email");
    let same =
        json!({"customer_email": "ADA@example.com", "items": [{"product_id": product, "quantity": 1}]});
    let (status, order) = system.send_as(&ada, Method::POST, "/api/v1/orders", Some(&same)).await;
    assert_eq!((status, order["customer_email"].as_str()), (201, Some("ada@example.com")), "{order}");
    assert_eq!(
        system
            .count("SELECT count(*) AS n FROM order_api.orders WHERE customer_email <> 'ada@example.com'")
            .await,
        0
    );
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_guests_unpaid_orders_per_client_are_limited() {
    fn limited(settings: &mut order_api::settings::Settings) {
        trusting_localhost(settings);
        settings.max_open_orders_per_client = 2;
    }
    let system = System::start_with(Options { gateway: limited, ..Options::default() }).await;
    let product = system.product("GUEST-HOLD", "5.00", 1000).await;
    // A guest holds stock with orders that wait on a customer action.
    let hold = guest_order(product, "pm_card_no_callback");
    for _ in 0..2 {
        let placed = as_client(&system, "198.51.100.1", Method::POST, "/api/v1/orders", None, &hold).await;
        assert_eq!(placed.status().as_u16(), 201);
    }
    let third = as_client(&system, "198.51.100.1", Method::POST, "/api/v1/orders", None, &hold).await;
    assert_eq!(third.status().as_u16(), 429);
    let problem: Value = third.json().await.unwrap();
    assert_eq!(problem["code"], "too_many_open_orders", "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("pay or cancel"), "{problem}");
    let other = as_client(&system, "198.51.100.2", Method::POST, "/api/v1/orders", None, &hold).await;
    assert_eq!(other.status().as_u16(), 201, "another client is not affected");

    // An account is limited as such, whatever address it comes from; cancelling frees a place.
    let ada = customer(&system, "ada@example.com").await;
    let body =
        json!({"items": [{"product_id": product, "quantity": 1}], "payment_method": "pm_card_no_callback"});
    let mut first = String::new();
    for n in 0..2 {
        let (status, order) = system.send_as(&ada, Method::POST, "/api/v1/orders", Some(&body)).await;
        assert_eq!(status, 201, "{order}");
        if n == 0 {
            first = order["id"].as_str().unwrap().to_owned();
        }
    }
    assert_eq!(system.send_as(&ada, Method::POST, "/api/v1/orders", Some(&body)).await.0, 429);
    let cancel = format!("/api/v1/orders/{first}/cancel");
    assert_eq!(system.send_as(&ada, Method::POST, &cancel, Some(&json!({}))).await.0, 200);
    assert_eq!(system.send_as(&ada, Method::POST, "/api/v1/orders", Some(&body)).await.0, 201);
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_guests_idempotency_keys_are_per_client_and_secrets_are_not_stored() {
    let system = System::start_with(Options { gateway: trusting_localhost, ..Options::default() }).await;
    let product = system.product("GUEST-IDEM", "5.00", 100).await;
    let body = guest_order(product, "pm_card_requires_action");
    let first =
        as_client(&system, "198.51.100.1", Method::POST, "/api/v1/orders", Some("shared-key"), &body).await;
    assert_eq!(first.status().as_u16(), 201);
    let first: Value = first.json().await.unwrap();
    let token = first["access_token"].as_str().unwrap().to_owned();

    // Another guest with the same key (keys leak, or are guessable) gets an order of its own,
    // not the first guest's answer.
    let other =
        as_client(&system, "198.51.100.2", Method::POST, "/api/v1/orders", Some("shared-key"), &body).await;
    assert_eq!(other.status().as_u16(), 201);
    assert!(other.headers().get("idempotent-replayed").is_none());
    let other: Value = other.json().await.unwrap();
    assert_ne!(other["id"], first["id"]);
    // The first guest's own retry is a replay, without the token (stored only hashed).
    let again =
        as_client(&system, "198.51.100.1", Method::POST, "/api/v1/orders", Some("shared-key"), &body).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!((again["id"].clone(), again.get("access_token")), (first["id"].clone(), None));
    let leaked = format!(
        "SELECT count(*) AS n FROM order_api.idempotency_keys WHERE position(convert_to('{token}', 'UTF8') in response_body) > 0"
    );
    assert_eq!(system.count(&leaked).await, 0, "the guest's token is not stored in plain text");

    // Login answers (tokens) and webhook endpoints (signing secrets) are never stored.
    let login = system
        .http
        .post(system.url("/api/v1/auth/login"))
        .header("idempotency-key", "login-key")
        .json(&json!({"email": crate::support::ADMIN_EMAIL, "password": crate::support::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 200);
    let endpoint = system
        .http
        .post(system.url("/api/v1/webhook-endpoints"))
        .bearer_auth(&system.admin_token)
        .header("idempotency-key", "endpoint-key")
        .json(&json!({"url": system.receiver.url("/hook")}))
        .send()
        .await
        .unwrap();
    assert_eq!(endpoint.status().as_u16(), 201);
    let secret = endpoint.json::<Value>().await.unwrap()["secret"].as_str().unwrap().to_owned();
    let stored =
        "SELECT count(*) AS n FROM order_api.idempotency_keys WHERE key IN ('login-key', 'endpoint-key')";
    assert_eq!(system.count(stored).await, 0);
    let leaked = format!(
        "SELECT count(*) AS n FROM order_api.idempotency_keys WHERE position(convert_to('{secret}', 'UTF8') in response_body) > 0"
    );
    assert_eq!(system.count(&leaked).await, 0);
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_guests_a_key_whose_request_died_in_flight_is_taken_over_and_expired_keys_are_purged() {
    fn quick(settings: &mut order_api::settings::Settings) {
        settings.idempotency_in_flight_timeout_ms = 1500;
    }
    let system = System::start_with(Options { gateway: quick, ..Options::default() }).await;
    let product = system.product("GUEST-DIED", "5.00", 100).await;
    let body = serde_json::to_vec(&guest_order(product, "pm_card_ok")).unwrap();
    // The row a gateway leaves when it is killed mid-request: a key with no answer.
    let fingerprint: Vec<u8> = Sha256::new()
        .chain_update(b"POST")
        .chain_update(b"/api/v1/orders")
        .chain_update(&body)
        .finalize()
        .to_vec();
    let hex: String = fingerprint.iter().map(|b| format!("{b:02x}")).collect();
    system
        .execute(&format!(
            "INSERT INTO order_api.idempotency_keys (scope, key, fingerprint) VALUES ('guest:127.0.0.1', 'died', '\\x{hex}')"
        ))
        .await;
    let post = || {
        system
            .http
            .post(system.url("/api/v1/orders"))
            .header("idempotency-key", "died")
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
    };
    assert_eq!(post().await.unwrap().status().as_u16(), 409, "still in flight within the timeout");
    let taken = eventually("the dead request's key to be taken over", Duration::from_secs(20), || async {
        let response = post().await.ok()?;
        (response.status().as_u16() == 201).then_some(response)
    })
    .await;
    let order: Value = taken.json().await.unwrap();
    let replay = post().await.unwrap();
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.json::<Value>().await.unwrap()["id"], order["id"]);
    assert_eq!(system.count("SELECT count(*) AS n FROM order_api.orders").await, 1);

    // Expired keys are purged in bounded batches; fresh ones stay.
    for n in 0..5 {
        system
            .execute(&format!(
                "INSERT INTO order_api.idempotency_keys (scope, key, fingerprint, created_at) \
                 VALUES ('old', 'k{n}', '\\x00', now() - interval '25 hours')"
            ))
            .await;
    }
    let pool = platform::db::pool(&system.db.url_for("order_api"), 2).unwrap();
    let mut conn = pool.get().await.unwrap();
    assert_eq!(order_api::idempotency::purge_expired(&mut conn, 2).await.unwrap(), 2, "one batch at most");
    drop(conn);
    let (keys, _) = order_api::maintenance::purge_once(&pool, 2).await.unwrap();
    assert_eq!(keys, 3);
    assert_eq!(
        system.count("SELECT count(*) AS n FROM order_api.idempotency_keys WHERE scope = 'old'").await,
        0
    );
    assert_eq!(
        system.count("SELECT count(*) AS n FROM order_api.idempotency_keys WHERE key = 'died'").await,
        1
    );
    system.finish().await;
}

/// The gateway dies after the order committed but before the answer was stored (chaos found
/// this with kill -9): the retry that takes the key over gets that order, not a second one.
#[tokio::test(flavor = "multi_thread")]
async fn security_guests_a_key_whose_order_committed_before_the_crash_returns_that_order() {
    fn quick(settings: &mut order_api::settings::Settings) {
        settings.idempotency_in_flight_timeout_ms = 1500;
    }
    let system = System::start_with(Options { gateway: quick, ..Options::default() }).await;
    let product = system.product("GUEST-CRASHED", "5.00", 100).await;
    let body = serde_json::to_vec(&guest_order(product, "pm_card_ok")).unwrap();
    let post = || {
        system
            .http
            .post(system.url("/api/v1/orders"))
            .header("idempotency-key", "crashed")
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
    };
    let first = post().await.unwrap();
    assert_eq!(first.status().as_u16(), 201);
    let first: Value = first.json().await.unwrap();
    // What a kill -9 between the order's commit and `finish` leaves: the key without an answer.
    system
        .execute(
            "UPDATE order_api.idempotency_keys SET response_status = NULL, response_body = NULL, \
             response_type = NULL, response_location = NULL WHERE key = 'crashed'",
        )
        .await;
    let taken = eventually("the dead request's key to be taken over", Duration::from_secs(20), || async {
        let response = post().await.ok()?;
        (response.status().as_u16() == 201).then_some(response)
    })
    .await;
    let retried: Value = taken.json().await.unwrap();
    assert_eq!(retried["id"], first["id"], "the retry names the order the first request placed");
    assert_eq!(system.count("SELECT count(*) AS n FROM order_api.orders").await, 1, "one order, not two");
    // The first answer's token was lost with it; the retry's fresh one opens the order.
    let token = retried["access_token"].as_str().expect("a fresh access token for the guest");
    let id = retried["id"].as_str().unwrap();
    let read = system
        .http
        .get(system.url(&format!("/api/v1/orders/{id}?access_token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status().as_u16(), 200);
    system.order_until(id, "the order to confirm", |o| o["status"] == "confirmed").await;
    system.finish().await;
}

async fn login(
    system: &System,
    client: Option<&str>,
    email: &str,
    password: &str,
) -> (u16, Value, Option<String>) {
    let mut request = system
        .http
        .post(system.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}));
    if let Some(client) = client {
        request = request.header("x-forwarded-for", client);
    }
    let response = request.send().await.unwrap();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null), retry_after)
}

/// Wrong guesses (`email(n)` for the n-th) until the gateway refuses one with a wait of two
/// seconds or more, so the next request is surely still refused. The first `free` are always
/// let through; after them the wait doubles from 1 s.
async fn guess_until_backoff(
    system: &System,
    client: Option<&str>,
    email: impl Fn(usize) -> String,
    free: usize,
) {
    for n in 1..=free {
        let (status, problem, _) = login(system, client, &email(n), "wrong password guess").await;
        assert_eq!(status, 401, "guess {n} of the {free} free ones: {problem}");
    }
    let attempt = std::sync::atomic::AtomicUsize::new(free);
    let email = &email;
    eventually("a login backoff of 2 s or more", Duration::from_secs(30), || {
        let n = attempt.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        async move {
            let (status, problem, retry_after) =
                login(system, client, &email(n), "wrong password guess").await;
            assert!(status == 401 || status == 429, "{status} {problem}");
            let wait = retry_after.map(|s| s.parse::<u64>().unwrap());
            (status == 429 && problem["code"] == "login_backoff" && wait >= Some(2)).then_some(())
        }
    })
    .await;
}

fn short_backoff(settings: &mut order_api::settings::Settings) {
    settings.login_backoff_max_seconds = 5;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_guests_login_backs_off_per_account_in_the_shared_database() {
    let system = System::start_with(Options { gateway: short_backoff, ..Options::default() }).await;
    customer(&system, "ada@example.com").await;
    guess_until_backoff(&system, None, |_| "ada@example.com".into(), 5).await;
    // Now even the right password must wait. The count lives in PostgreSQL, so every gateway
    // replica sees it.
    let (status, problem, _) = login(&system, None, "Ada@Example.com", PASSWORD).await;
    assert_eq!((status, problem["code"].as_str()), (429, Some("login_backoff")), "{problem}");
    let shared = "SELECT count(*) AS n FROM order_api.login_attempts \
                  WHERE subject = 'account:ada@example.com' AND blocked_until > now()";
    assert_eq!(system.count(shared).await, 1);
    // Unknown emails back off alike, so the answer reveals no account.
    guess_until_backoff(&system, None, |_| "nobody@example.com".into(), 5).await;
    // After the wait, the owner gets in, and a success starts the account afresh.
    eventually("the backoff to lapse", Duration::from_secs(30), || async {
        (login(&system, None, "ada@example.com", PASSWORD).await.0 == 200).then_some(())
    })
    .await;
    let left = "SELECT count(*) AS n FROM order_api.login_attempts WHERE subject = 'account:ada@example.com'";
    assert_eq!(system.count(left).await, 0);
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_guests_a_forged_forwarded_for_does_not_escape_the_per_client_login_backoff() {
    fn strict(settings: &mut order_api::settings::Settings) {
        settings.login_free_attempts_per_client = 3;
    }
    // No trusted proxies (the default): X-Forwarded-For is the attacker's own words. Every
    // guess names a new account and a new forged address; all count against the one peer.
    let system = System::start_with(Options { gateway: strict, ..Options::default() }).await;
    for n in 1..=3 {
        let (forged, email) = (format!("203.0.113.{n}"), format!("user{n}@example.com"));
        assert_eq!(login(&system, Some(&forged), &email, "wrong password").await.0, 401);
    }
    let attempt = std::sync::atomic::AtomicUsize::new(3);
    let refused = eventually("a per-client refusal", Duration::from_secs(20), || {
        let n = attempt.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let system = &system;
        async move {
            let (forged, email) = (format!("203.0.113.{n}"), format!("user{n}@example.com"));
            let (status, problem, _) = login(system, Some(&forged), &email, "wrong password").await;
            (status == 429).then_some(problem)
        }
    })
    .await;
    assert_eq!(refused["code"], "login_backoff");
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_guests_forwarded_for_from_a_trusted_proxy_names_the_client() {
    fn behind_proxy(settings: &mut order_api::settings::Settings) {
        trusting_localhost(settings);
        settings.login_free_attempts_per_client = 3;
    }
    let system = System::start_with(Options { gateway: behind_proxy, ..Options::default() }).await;
    guess_until_backoff(&system, Some("198.51.100.1"), |n| format!("user{n}@example.com"), 3).await;
    // A client cannot pose as another by prepending addresses (the proxy appends the real one,
    // and that one counts); another client behind the same proxy is somebody else.
    assert_eq!(login(&system, Some("198.51.100.2, 198.51.100.1"), "more@example.com", "wrong").await.0, 429);
    assert_eq!(login(&system, Some("198.51.100.2"), "other@example.com", "wrong password").await.0, 401);
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_guests_registration_does_not_reveal_who_has_an_account() {
    let system = System::start().await;
    let register = async |email: &str, name: &str| {
        system
            .post(
                "/api/v1/auth/register",
                &json!({"email": email, "password": "some other passphrase", "name": name}),
            )
            .await
    };
    customer(&system, "ada@example.com").await;
    let (taken_status, taken) = register("ada@example.com", "Mallory").await;
    let (free_status, free) = register("fresh@example.com", "Mallory").await;
    assert_eq!((taken_status, free_status), (201, 201));
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&taken), keys(&free));
    assert_eq!((taken["name"].as_str(), taken["role"].as_str()), (Some("Mallory"), Some("customer")));
    // Nothing changed for the real owner.
    assert_eq!(login(&system, None, "ada@example.com", PASSWORD).await.0, 200);
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_guests_the_gateway_serves_metrics_only_on_its_own_listener() {
    let system = System::start().await;
    let public = system.http.get(system.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status().as_u16(), 404);
    assert!(!public.text().await.unwrap().contains("http_requests_total"));
    let private = system.http.get(format!("{}/metrics", system.metrics)).send().await.unwrap();
    assert_eq!(private.status().as_u16(), 200);
    assert!(private.text().await.unwrap().contains("http_requests_total"));
    system.finish().await;
}

#[test]
fn security_guests_production_turns_guest_checkout_off() {
    let dir = testkit::repo_root().join("deploy/k8s/overlays/production");
    let kustomization: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap()).unwrap();
    let patched: Vec<String> = kustomization["patches"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|p| p["target"]["kind"] == "ConfigMap" && p["target"]["name"] == "order-api-config")
        .filter_map(|p| {
            let patch: serde_yaml::Value =
                serde_yaml::from_str(&std::fs::read_to_string(dir.join(p["path"].as_str()?)).ok()?).ok()?;
            patch["data"]["GUEST_CHECKOUT"].as_str().map(str::to_owned)
        })
        .collect();
    assert_eq!(patched, ["false"], "production patches GUEST_CHECKOUT to false");
}
