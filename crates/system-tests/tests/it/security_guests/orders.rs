//! Findings 4 and 7: a guest order opens only with its token, its invoice link and events leak
//! nothing, an account's order mails only the account, unpaid orders per client are limited, and
//! production turns guest checkout off.

use super::{as_client, customer, guest_order, trusting_localhost};
use crate::support::{Options, SAGA_TIMEOUT, System};
use reqwest::Method;
use serde_json::{Value, json};
use testkit::eventually;
use uuid::Uuid;

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
