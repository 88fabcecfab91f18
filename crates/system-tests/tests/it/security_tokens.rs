//! Issue 9, finding 5 and the low item on revocation: only the gateway can mint tokens, services
//! check the audience, logout / password change / role change revoke tokens, and each service's
//! broker user may publish only its own events and read only its own queues.

use crate::support::{System, mint_token, test_token_keys};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use hmac::{Hmac, KeyInit, Mac};
use lapin::options::{BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::options::{QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use messaging::definitions::Permissions;
use messaging::topology::{EXCHANGE, Topology, queue_name, reroute_exchange, retry_queue};
use platform::auth::{Role, TokenKeys, TokenPolicy};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An HS256 token over `claims`, signed with `secret`: what anyone holding a shared secret could
/// mint before, and an algorithm-confusion attempt when `secret` is a public key.
fn hs256(claims: &Value, kid: &str, secret: &[u8]) -> String {
    let header = b64(json!({"alg": "HS256", "typ": "JWT", "kid": kid}).to_string().as_bytes());
    let payload = b64(claims.to_string().as_bytes());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(format!("{header}.{payload}").as_bytes());
    format!("{header}.{payload}.{}", b64(&mac.finalize().into_bytes()))
}

fn admin_claims() -> Value {
    let now = chrono_now();
    json!({"sub": Uuid::now_v7(), "email": "mallory@example.com", "name": "Mallory", "role": "admin",
        "iss": "order-api", "aud": "orders", "iat": now, "exp": now + 600})
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

async fn status(system: &System, token: &str, method: Method, url: &str, body: Option<&Value>) -> u16 {
    let mut request = system.http.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_tokens_a_service_holds_nothing_that_mints_admin_tokens() {
    let system = System::start().await;

    // The gateway publishes its public key; there is nothing private in it.
    let jwks: Value =
        system.http.get(system.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    assert_eq!((keys[0]["kty"].as_str(), keys[0]["crv"].as_str()), (Some("OKP"), Some("Ed25519")));
    assert!(keys[0].get("d").is_none(), "the private part is never published");
    let kid = keys[0]["kid"].as_str().unwrap().to_owned();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD.decode(system.admin_token.split('.').next().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!((header["alg"].as_str(), header["kid"].as_str()), (Some("EdDSA"), Some(kid.as_str())));

    // Everything a compromised service holds: the public keys. It cannot sign with them.
    let service_keys = TokenKeys::verifier(
        platform::auth::parse_public_keys(&jwks.to_string()).unwrap(),
        test_token_keys(600).policy().clone(),
    )
    .unwrap();
    let subject = platform::auth::Subject {
        id: Uuid::now_v7(),
        email: "m@example.com",
        name: "M",
        role: Role::Admin,
        session_version: 0,
    };
    assert!(service_keys.issue(&subject).is_err(), "a verifier cannot mint");

    let claims = admin_claims();
    let x = keys[0]["x"].as_str().unwrap();
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "kid": kid}).to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let stranger_key =
        platform::auth::SigningKey::from_pem(&platform::auth::generate_signing_key_pem()).unwrap();
    let stranger = TokenKeys::issuer(stranger_key, vec![], test_token_keys(600).policy().clone()).unwrap();
    let other_audience = TokenKeys::issuer(
        platform::auth::SigningKey::from_pem(&crate::support::test_signing_key()).unwrap(),
        vec![],
        TokenPolicy { issuer: "order-api".into(), audience: "staging".into(), ttl_seconds: 600 },
    )
    .unwrap();
    let forgeries = [
        (
            "HS256 with the old shared test secret",
            hs256(&claims, &kid, b"test-secret-that-is-at-least-32-bytes-long"),
        ),
        ("HS256 keyed with the public key", hs256(&claims, &kid, x.as_bytes())),
        ("HS256 keyed with the raw public key", hs256(&claims, &kid, &URL_SAFE_NO_PAD.decode(x).unwrap())),
        ("alg none", unsigned),
        (
            "signed by another Ed25519 key",
            mint_token(&stranger, Uuid::now_v7(), "m@example.com", "M", Role::Admin),
        ),
        (
            "the real key, another audience",
            mint_token(&other_audience, Uuid::now_v7(), "m@example.com", "M", Role::Admin),
        ),
    ];
    let product =
        json!({"sku": "FORGED-1", "name": "Forged", "price": "1.00", "currency": "USD", "stock": 5});
    let targets = [
        (Method::POST, system.url("/api/v1/products"), Some(&product)),
        (Method::POST, format!("{}/products", system.inventory), Some(&product)),
        (Method::GET, format!("{}/webhook-endpoints", system.dispatcher_url), None),
        (Method::GET, system.url("/api/v1/admin/stuck-orders"), None),
    ];
    for (what, token) in &forgeries {
        for (method, url, body) in &targets {
            let answer = status(&system, token, method.clone(), url, *body).await;
            assert_eq!(answer, 401, "{what} at {method} {url}");
        }
    }
    assert_eq!(system.count("SELECT count(*) AS n FROM inventory.products WHERE sku = 'FORGED-1'").await, 0);
    // The real admin token passes the gateway's doors, and the gateway's token for it the
    // services': the refusals above are about the forgeries, not the routes.
    let inside = crate::support::as_gateway(&system.admin_token);
    assert_eq!(status(&system, &inside, Method::GET, &targets[2].1, None).await, 200);
    assert_eq!(status(&system, &system.admin_token, Method::GET, &targets[3].1, None).await, 200);
    system.finish().await;
}

async fn customer(system: &System, email: &str, password: &str) {
    let mut conn = AsyncPgConnection::establish(&system.db.url_for("order_api")).await.unwrap();
    let registration = order_api::accounts::Registration {
        email: email.into(),
        password: password.into(),
        name: "Rosa".into(),
    };
    order_api::accounts::register(&mut conn, registration, Role::Customer).await.unwrap();
}

async fn login(system: &System, email: &str, password: &str) -> (u16, Option<String>) {
    let (status, body) =
        system.post("/api/v1/auth/login", &json!({"email": email, "password": password})).await;
    (status, body["access_token"].as_str().map(str::to_owned))
}

async fn me(system: &System, token: &str) -> u16 {
    system.send_as(token, Method::GET, "/api/v1/auth/me", None).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn security_tokens_logout_password_and_role_changes_end_old_tokens() {
    let system = System::start().await;
    let (email, first, second) = ("rosa@example.com", "a long first password", "another long password");
    customer(&system, email, first).await;

    // Logout: the token in hand stops working at once.
    let (_, token) = login(&system, email, first).await;
    let token = token.unwrap();
    assert_eq!(me(&system, &token).await, 200);
    let (status, _) = system.send_as(&token, Method::POST, "/api/v1/auth/logout", None).await;
    assert_eq!(status, 204);
    assert_eq!(me(&system, &token).await, 401, "a logged-out token still works");
    assert_eq!(system.send_as(&token, Method::GET, "/api/v1/orders", None).await.0, 401);

    // Password change: every older token ends, the answer is a fresh one, the old password is gone.
    let (_, stolen) = login(&system, email, first).await;
    let (_, mine) = login(&system, email, first).await;
    let (stolen, mine) = (stolen.unwrap(), mine.unwrap());
    let wrong = json!({"current_password": "not my password at all", "new_password": second});
    assert_eq!(system.send_as(&mine, Method::POST, "/api/v1/auth/password", Some(&wrong)).await.0, 422);
    let change = json!({"current_password": first, "new_password": second});
    let (status, body) = system.send_as(&mine, Method::POST, "/api/v1/auth/password", Some(&change)).await;
    assert_eq!(status, 200, "{body}");
    let fresh = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(me(&system, &stolen).await, 401, "a token from before the password change still works");
    assert_eq!(me(&system, &mine).await, 401);
    assert_eq!(me(&system, &fresh).await, 200);
    assert_eq!(login(&system, email, first).await.0, 401, "the old password still logs in");
    let (status, latest) = login(&system, email, second).await;
    assert_eq!(status, 200);
    let latest = latest.unwrap();

    // A role change made outside the API (an operator's UPDATE) ends the account's tokens within a
    // minute, on every gateway replica (each reloads revocations from the database).
    system.execute(&format!("UPDATE order_api.users SET role = 'admin' WHERE email = '{email}'")).await;
    testkit::eventually(
        "the token from before the role change to be refused",
        Duration::from_secs(60),
        || async { (me(&system, &latest).await == 401).then_some(()) },
    )
    .await;
    assert_eq!(me(&system, &fresh).await, 401);
    let (status, admin) = login(&system, email, second).await;
    assert_eq!(status, 200);
    assert_eq!(system.send_as(&admin.unwrap(), Method::GET, "/api/v1/admin/stuck-orders", None).await.0, 200);
    system.finish().await;
}

// --- Broker users ------------------------------------------------------------------------------

fn management() -> String {
    std::env::var("TEST_RABBITMQ_MANAGEMENT").unwrap_or_else(|_| "http://127.0.0.1:15672".to_owned())
}

/// Creates `service`'s broker user for this vhost with exactly the rights `definitions.json`
/// gives it; returns its AMQP URL. Users are global, so the name carries the vhost.
async fn broker_user(vhost: &str, service: &str) -> (String, String) {
    let user = format!("{vhost}-{service}");
    let password = Uuid::new_v4().simple().to_string();
    let client = reqwest::Client::new();
    let put = |path: String, body: Value| {
        client.put(format!("{}{path}", management())).basic_auth("guest", Some("guest")).json(&body).send()
    };
    put(format!("/api/users/{user}"), json!({"password": password, "tags": ""}))
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let participant = crate::topology::participants().into_iter().find(|p| p.service == service).unwrap();
    let rights = Permissions::of(&participant);
    put(
        format!("/api/permissions/{vhost}/{user}"),
        json!({"configure": rights.configure, "write": rights.write, "read": rights.read}),
    )
    .await
    .unwrap()
    .error_for_status()
    .unwrap();
    put(
        format!("/api/topic-permissions/{vhost}/{user}"),
        json!({"exchange": EXCHANGE, "write": rights.topic_write, "read": rights.topic_read}),
    )
    .await
    .unwrap()
    .error_for_status()
    .unwrap();
    let host = std::env::var("TEST_AMQP_HOST").unwrap_or_else(|_| "127.0.0.1:5672".to_owned());
    (user.clone(), format!("amqp://{user}:{password}@{host}/{vhost}"))
}

async fn delete_user(user: &str) {
    let _ = reqwest::Client::new()
        .delete(format!("{}/api/users/{user}", management()))
        .basic_auth("guest", Some("guest"))
        .send()
        .await;
}

/// Publishes one message with a publisher confirm on a fresh channel (a refusal closes it).
async fn publish(connection: &Connection, exchange: &str, routing_key: &str) -> Result<(), String> {
    let attempt = async {
        let channel = connection.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        let payload = json!({"type": routing_key, "forged": true}).to_string();
        let confirm = channel
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                payload.as_bytes(),
                BasicProperties::default(),
            )
            .await?
            .await?;
        Ok::<_, lapin::Error>(confirm.is_ack())
    };
    match tokio::time::timeout(Duration::from_secs(10), attempt).await {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => Err("nacked".into()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("no confirm within 10 s".into()),
    }
}

async fn read(connection: &Connection, queue: &str) -> Result<(), String> {
    let channel = connection.create_channel().await.map_err(|e| e.to_string())?;
    channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: false })
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn consume(connection: &Connection, queue: &str) -> Result<(), String> {
    let channel = connection.create_channel().await.map_err(|e| e.to_string())?;
    channel
        .basic_consume(queue.into(), "spy".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await
        .map_err(|e| e.to_string())?;
    // Hands back anything it took, so the queue depths below count every message.
    let _ = channel.close(200, "looked".into()).await;
    Ok(())
}

async fn depth(connection: &Connection, queue: &str) -> u32 {
    let channel = connection.create_channel().await.unwrap();
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    channel.queue_declare(queue.into(), passive, FieldTable::default()).await.unwrap().message_count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_tokens_a_service_broker_user_cannot_forge_events_or_read_other_queues() {
    let vhost = testkit::TestVhost::create().await.unwrap();
    let topology = Topology {
        queue_type: messaging::QueueType::Quorum,
        retry_delays: vec![Duration::from_millis(200), Duration::from_millis(500)],
        participants: crate::topology::participants(),
    };
    topology.declare_everything(&vhost.amqp_url()).await.unwrap();
    let admin = Connection::connect(&vhost.amqp_url(), ConnectionProperties::default()).await.unwrap();

    // Every service, as its own user, can declare its own part and publish its own events.
    let mut users = Vec::new();
    let mut connections = std::collections::HashMap::new();
    for participant in crate::topology::participants() {
        let (service, events) = (&participant.service, &participant.publishes);
        let (user, url) = broker_user(&vhost.name, service).await;
        users.push(user);
        let connection = Connection::connect(&url, ConnectionProperties::default()).await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        let own = Topology { participants: vec![participant], ..topology.clone() };
        own.declare(&channel)
            .await
            .unwrap_or_else(|e| panic!("{service} cannot declare its own topology: {e}"));
        for event in *events {
            publish(&connection, EXCHANGE, event)
                .await
                .unwrap_or_else(|e| panic!("{service} publishing {event}: {e}"));
        }
        // Its consumer's retries go through its own reroute exchange.
        let queue = queue_name(service);
        let retry = retry_queue(&queue, Duration::from_millis(500));
        publish(&connection, &reroute_exchange(&queue), &retry)
            .await
            .unwrap_or_else(|e| panic!("{service} retry: {e}"));
        consume(&connection, &queue).await.unwrap_or_else(|e| panic!("{service} consuming its inbox: {e}"));
        connections.insert(*service, connection);
    }
    // The gateway's inbox got the events it consumes from the others; empty it before the attack.
    testkit::eventually("the legitimate events to reach the gateway", Duration::from_secs(10), || async {
        (depth(&admin, "order-api.inbox").await > 0).then_some(())
    })
    .await;
    let purge = admin.create_channel().await.unwrap();
    purge.queue_purge("order-api.inbox".into(), Default::default()).await.unwrap();
    purge.queue_purge("payment.inbox".into(), Default::default()).await.unwrap();

    // The attack: whoever took the internet-facing dispatcher tries to confirm an order.
    let dispatcher = &connections["webhook-dispatcher"];
    let forged = publish(dispatcher, EXCHANGE, "payment.succeeded").await;
    assert!(forged.is_err(), "the dispatcher published payment.succeeded");
    for (exchange, key) in [
        ("", "order-api.inbox"),
        ("amq.topic", "payment.succeeded"),
        (reroute_exchange("order-api.inbox").as_str(), "order-api.inbox"),
    ] {
        assert!(
            publish(dispatcher, exchange, key).await.is_err(),
            "the dispatcher dropped a message into another service's queue via `{exchange}`"
        );
    }
    for queue in ["order-api.inbox", "payment.inbox", "payment.inbox.dlq", "notifier.inbox.retry.200ms"] {
        assert!(read(dispatcher, queue).await.is_err(), "the dispatcher read {queue}");
        assert!(consume(dispatcher, queue).await.is_err(), "the dispatcher consumed {queue}");
    }
    // Nor can it tap the event stream: a queue of its own bound to other services' events.
    let channel = dispatcher.create_channel().await.unwrap();
    let tap = "webhook-dispatcher.inbox.tap";
    channel
        .queue_declare(
            tap.into(),
            QueueDeclareOptions { exclusive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let bound = channel
        .queue_bind(
            tap.into(),
            EXCHANGE.into(),
            "payment.#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await;
    assert!(bound.is_err(), "the dispatcher bound a queue to payment events");

    // None of the forgeries reached a queue.
    for queue in ["order-api.inbox", "payment.inbox"] {
        assert_eq!(depth(&admin, queue).await, 0, "a forged message reached {queue}");
    }

    for user in users {
        delete_user(&user).await;
    }
    vhost.delete().await.unwrap();
}
