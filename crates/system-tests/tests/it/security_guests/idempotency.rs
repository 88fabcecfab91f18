//! Finding 6: idempotency records are per client, keep no secrets, are taken over after a crash
//! (returning an order that committed) and expire.

use super::{as_client, guest_order, trusting_localhost};
use crate::support::{Options, System};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;
use testkit::eventually;

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
