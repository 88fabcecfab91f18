//! Issue 9, findings 4 (guest abuse, but for the payment hold time), 6 (idempotency records),
//! 7 (guest order access), 8 (login brute force, client addresses) and the low items on
//! registration and the gateway's /metrics, each performed as an attacker would, through the
//! public gateway.

use crate::support::System;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

// By what the attacker goes after: guest orders, idempotency records, logins and accounts.
mod idempotency;
mod login;
mod orders;

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
