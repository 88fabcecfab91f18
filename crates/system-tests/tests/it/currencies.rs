//! Several currencies: inventory loads ECB-format rates from a feed served by a local HTTP
//! server, products show converted display prices, and an order paid in another currency locks
//! its rate (on the order and in the invoice). Stale, malformed and unknown are refused clearly.

use crate::notifications::decoded;
use crate::support::{Options, SAGA_TIMEOUT, System};
use chrono::{NaiveDate, Utc};
use serde_json::{Value, json};
use std::time::Duration;
use testkit::{HttpReceiver, eventually};

fn feed(date: NaiveDate, rates: &[(&str, &str)]) -> String {
    let cubes: String =
        rates.iter().map(|(currency, rate)| format!("<Cube currency='{currency}' rate='{rate}'/>")).collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gesmes:Envelope xmlns:gesmes=\"http://www.gesmes.org/xml/2002-08-01\" \
         xmlns=\"http://www.ecb.int/vocabulary/2002-08-01/eurofxref\"><gesmes:subject>Reference rates</gesmes:subject>\
         <Cube><Cube time='{date}'>{cubes}</Cube></Cube></gesmes:Envelope>"
    )
}

/// The system with inventory reading its rates from `feed_server` (loaded at start-up).
async fn start(feed_server: &HttpReceiver) -> System {
    System::start_with(Options {
        rates: Some(inventory::rates::RateSettings {
            rates_source_url: feed_server.url("/stats/eurofxref/eurofxref-daily.xml"),
            rates_refresh_at: "16:00".into(),
            rates_max_age_days: 5,
        }),
        ..Options::default()
    })
    .await
}

/// Waits until both inventory and the gateway's copy hold the rates of `date`.
async fn rates_of(system: &System, date: NaiveDate) -> Value {
    let rates = eventually("inventory to load the rates", Duration::from_secs(20), || async {
        let (status, body) = system.get("/api/v1/exchange-rates").await;
        (status == 200 && body["date"] == json!(date.to_string())).then_some(body)
    })
    .await;
    let copied = format!("SELECT count(*) AS n FROM order_api.exchange_rates WHERE rate_date = '{date}'");
    eventually("the gateway to learn the rates", SAGA_TIMEOUT, || async {
        (system.count(&copied).await > 0).then_some(())
    })
    .await;
    rates
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_rates_refuse_conversion_a_fresh_feed_converts_and_a_bad_feed_changes_nothing() {
    let server = HttpReceiver::start().await.unwrap();
    let old = NaiveDate::from_ymd_opt(2020, 1, 2).unwrap();
    server.respond_with_body(&feed(old, &[("USD", "1.25"), ("JPY", "130")]));
    let system = start(&server).await;
    let loaded = rates_of(&system, old).await;
    assert_eq!(loaded["stale"], json!(true), "{loaded}");
    let product = system.product("FX-1", "100.00", 10).await;

    // Stale: refused for display and for an order, with the date in the detail.
    let (status, body) = system.get(&format!("/api/v1/products/{product}?currency=EUR")).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("exchange_rates_stale")), "{body}");
    assert!(body["detail"].as_str().unwrap().contains("2020-01-02"), "{body}");
    let order = json!({"customer_name": "Ada", "customer_email": "ada@example.com", "currency": "EUR",
        "items": [{"product_id": product, "quantity": 1}]});
    let (status, body) = system.post("/api/v1/orders", &order).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("exchange_rates_stale")), "{body}");
    // The products' own currency needs no rate.
    let (status, body) = system.get(&format!("/api/v1/products/{product}?currency=USD")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["display_price"],
        json!({"amount": "100.00", "currency": "USD", "rate": "1", "rate_date": null})
    );

    // Refresh now: today's feed converts.
    let today = Utc::now().date_naive();
    server.respond_with_body(&feed(today, &[("USD", "1.25"), ("JPY", "162.5")]));
    let (status, body) = system.post("/api/v1/exchange-rates/refresh", &json!({})).await;
    assert_eq!(status, 401, "only an admin refreshes: {body}");
    let (status, body) = system.admin_post("/api/v1/exchange-rates/refresh", &json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["date"].clone(), body["stale"].clone()), (json!(today.to_string()), json!(false)));
    rates_of(&system, today).await;
    let (status, page) = system.get("/api/v1/products?currency=EUR").await;
    assert_eq!(status, 200, "{page}");
    let listed =
        page["items"].as_array().unwrap().iter().find(|p| p["id"] == json!(product)).cloned().unwrap();
    assert_eq!(listed["price"], json!("100.00"), "the price stays in the product's currency");
    assert_eq!(
        listed["display_price"],
        json!({"amount": "80.00", "currency": "EUR", "rate": "0.8", "rate_date": today.to_string()})
    );
    let (_, yen) = system.get(&format!("/api/v1/products/{product}?currency=JPY")).await;
    assert_eq!(yen["display_price"]["amount"], json!("13000.00"), "JPY has no minor unit: {yen}");
    for unknown in ["XYZ", "eur", "CHF"] {
        let (status, body) = system.get(&format!("/api/v1/products?currency={unknown}")).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("currency_not_convertible")),
            "{unknown}: {body}"
        );
    }

    // A malformed feed, and one with a zero rate: the refresh fails clearly, the rates stay.
    let broken =
        format!("<gesmes:Envelope><Cube><Cube time='{today}'><Cube currency='USD' rate='1.1'/></Cube>");
    server.respond_with_body(&broken);
    let (status, body) = system.admin_post("/api/v1/exchange-rates/refresh", &json!({})).await;
    assert_eq!((status, body["code"].as_str()), (502, Some("rates_feed_invalid")), "{body}");
    assert!(body["detail"].as_str().unwrap().contains("the rates held are unchanged"), "{body}");
    server.respond_with_body(&feed(today, &[("USD", "0"), ("JPY", "162.5")]));
    let (status, body) = system.admin_post("/api/v1/exchange-rates/refresh", &json!({})).await;
    assert_eq!(status, 502, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("USD: `0` is not a positive decimal rate"), "{body}");
    let (_, held) = system.get("/api/v1/exchange-rates").await;
    assert_eq!(
        held["rates"],
        json!([{"currency": "JPY", "rate": "162.5"}, {"currency": "USD", "rate": "1.25"}])
    );
    let (_, still) = system.get(&format!("/api/v1/products/{product}?currency=EUR")).await;
    assert_eq!(still["display_price"]["amount"], json!("80.00"));
    system.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_order_in_euros_locks_its_rate_on_the_order_and_in_the_invoice() {
    let server = HttpReceiver::start().await.unwrap();
    let today = Utc::now().date_naive();
    server.respond_with_body(&feed(today, &[("USD", "1.0842"), ("JPY", "162.92")]));
    let system = start(&server).await;
    rates_of(&system, today).await;
    let product = system.product("FX-LAPTOP", "999.99", 10).await;

    let order = json!({"customer_name": "Ada Lovelace", "customer_email": "ada@example.com", "currency": "EUR",
        "items": [{"product_id": product, "quantity": 2}]});
    let (status, placed) = system.post("/api/v1/orders", &order).await;
    assert_eq!(status, 201, "{placed}");
    // 1 USD = 1 / 1.0842 EUR = 0.9223390518 (ten places); 999.99 × that = 922.3298… → 922.33.
    let locked = json!({"from": "USD", "to": "EUR", "rate": "0.9223390518", "date": today.to_string()});
    assert_eq!(placed["currency"], json!("EUR"));
    assert_eq!(placed["items"][0]["price_at_purchase"], json!("922.33"));
    assert_eq!(placed["items"][0]["subtotal"], json!("1844.66"));
    assert_eq!(placed["total_amount"], json!("1844.66"));
    assert_eq!(placed["exchange_rate"], locked);
    let id = placed["id"].as_str().unwrap().to_owned();

    // New rates after the order do not touch it.
    server.respond_with_body(&feed(today, &[("USD", "1.5"), ("JPY", "162.92")]));
    let (status, _) = system.admin_post("/api/v1/exchange-rates/refresh", &json!({})).await;
    assert_eq!(status, 200);
    let confirmed = system.terminal(&id).await;
    assert_eq!(confirmed["status"], json!("confirmed"), "{confirmed}");
    assert_eq!(confirmed["exchange_rate"], locked);
    assert_eq!(confirmed["total_amount"], json!("1844.66"));
    let (_, listed) = system.admin_get("/api/v1/orders?order=desc&limit=5").await;
    assert_eq!(listed["items"][0]["exchange_rate"], locked, "the list shows it too");

    let mail = eventually("the invoice", SAGA_TIMEOUT, || async {
        system.smtp.received().into_iter().find(|m| m.header("subject").is_some_and(|s| s.contains(&id)))
    })
    .await;
    let text = decoded(&mail.data);
    assert!(text.contains("1844.66"), "{text}");
    assert!(text.contains("Prices converted from USD at 1 USD = 0.9223390518 EUR,"), "{text}");
    assert!(text.contains(&format!("ECB reference rate of {today}.")), "{text}");
    let confirmed_event = system
        .events()
        .into_iter()
        .find(|e| e["type"] == json!("order.confirmed") && e["data"]["order_id"] == json!(id))
        .unwrap();
    assert_eq!(confirmed_event["data"]["exchange_rate"], locked, "the event carries what the invoice prints");
    system.finish().await;
}
