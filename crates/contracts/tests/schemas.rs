//! `proto-schemas/` holds the events as JSON Schema for consumers in other languages. These
//! tests keep the two in step: every event this crate writes must validate against its schema
//! file, the schemas must refuse the mistakes they exist to catch, and there must be exactly one
//! file per event type and version.

#![expect(clippy::unwrap_used, reason = "a test should stop at the first unexpected value")]

use chrono::{TimeZone, Utc};
use contracts::events::{
    AccountRegistered, CancelledBy, Channel, Customer, DisabledReason, FailureReason, NotificationFailed,
    NotificationKind, NotificationSent, OrderCancelled, OrderConfirmed, OrderCreated, OrderFailed, OrderLine,
    OrderStatus, PasswordResetRequested, PaymentFailed, PaymentRefunded, PaymentRequested, PaymentSucceeded,
    PaymentVoided, ProductUpserted, ReservedLine, SecretLink, StockRejected, StockRejectionReason,
    StockReserved, StockSettled, WebhookDelivered, WebhookEndpointDisabled, WebhookFailed,
};
use contracts::{Amount, Currency, Envelope, Event};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use strum::VariantArray;
use uuid::Uuid;

const SCHEMA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto-schemas/");

fn schema_path(event_type: &str, version: u32) -> PathBuf {
    Path::new(SCHEMA_DIR).join(format!("{event_type}.v{version}.json"))
}

fn load_schema(event_type: &str, version: u32) -> Value {
    let path = schema_path(event_type, version);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// A validator for one schema file, asserting formats (`uuid`, `date-time`) too.
fn validator(event_type: &str, version: u32) -> jsonschema::Validator {
    let schema = load_schema(event_type, version);
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{event_type}.v{version}.json is not a valid schema: {e}"))
}

/// The validation errors of `instance`, one readable line each (empty when valid).
fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | n)
}

fn amount(s: &str) -> Amount {
    s.parse().unwrap()
}

fn eur() -> Currency {
    "EUR".parse().unwrap()
}

fn customer() -> Customer {
    Customer { name: "Ada Lovelace".into(), email: "ada@example.com".into(), phone: None }
}

fn order_lines() -> Vec<OrderLine> {
    vec![
        OrderLine {
            product_id: id(10),
            product_name: "Analytical Engine".into(),
            quantity: 2,
            unit_price: amount("999.99"),
            subtotal: amount("1999.98"),
        },
        OrderLine {
            product_id: id(11),
            product_name: "Punched card".into(),
            quantity: 1,
            unit_price: amount("0.5"),
            subtotal: amount("0.50"),
        },
    ]
}

fn reserved_lines() -> Vec<ReservedLine> {
    vec![ReservedLine { product_id: id(10), quantity: 2 }, ReservedLine { product_id: id(11), quantity: 1 }]
}

/// One realistic sample of every event variant (and both shapes of the optional fields).
fn samples() -> Vec<Event> {
    let order = id(1);
    vec![
        Event::ProductUpserted(ProductUpserted {
            product_id: id(10),
            sku: "AE-001".into(),
            name: "Analytical Engine".into(),
            price: amount("999.99"),
            currency: eur(),
            available: 7,
            active: true,
            version: 3,
        }),
        Event::OrderCreated(OrderCreated {
            order_id: order,
            customer: customer(),
            currency: eur(),
            lines: order_lines(),
            total_amount: amount("2000.48"),
            payment_method: "card".into(),
        }),
        Event::StockReserved(StockReserved { order_id: order, lines: reserved_lines() }),
        Event::StockRejected(StockRejected {
            order_id: order,
            reason: StockRejectionReason::InsufficientStock,
            product_id: Some(id(10)),
        }),
        Event::StockRejected(StockRejected {
            order_id: order,
            reason: StockRejectionReason::UnknownProduct,
            product_id: None,
        }),
        Event::StockCommitted(StockSettled { order_id: order, lines: reserved_lines() }),
        Event::StockReleased(StockSettled { order_id: order, lines: reserved_lines() }),
        Event::PaymentRequested(PaymentRequested {
            order_id: order,
            amount: amount("2000.48"),
            currency: eur(),
            payment_method: "card".into(),
            customer_id: None,
        }),
        Event::PaymentRequested(PaymentRequested {
            order_id: order,
            amount: amount("2000.48"),
            currency: eur(),
            payment_method: "card".into(),
            customer_id: Some(id(60)),
        }),
        Event::PaymentSucceeded(PaymentSucceeded {
            order_id: order,
            payment_id: id(20),
            amount: amount("2000.48"),
            currency: eur(),
        }),
        Event::PaymentFailed(PaymentFailed {
            order_id: order,
            payment_id: id(20),
            code: "card_declined".into(),
            message: "The card was declined".into(),
        }),
        Event::OrderConfirmed(OrderConfirmed {
            order_id: order,
            customer: customer(),
            currency: eur(),
            lines: order_lines(),
            total_amount: amount("2000.48"),
            placed_at: Utc.with_ymd_and_hms(2024, 5, 17, 9, 30, 0).unwrap(),
            payment_id: id(20),
            order_link: None,
            exchange_rate: None,
        }),
        Event::OrderConfirmed(OrderConfirmed {
            order_id: order,
            customer: customer(),
            currency: eur(),
            lines: order_lines(),
            total_amount: amount("2000.48"),
            placed_at: Utc.with_ymd_and_hms(2024, 5, 17, 9, 30, 0).unwrap(),
            payment_id: id(20),
            order_link: Some(format!(
                "https://shop.example/api/v1/orders/{order}?access_token=kP3Xq9vT0bY7wLmN2cR5sA8dF1gH4jK6eU-zW_oQ"
            )),
            exchange_rate: Some(contracts::exchange::LockedRate {
                from: "USD".parse().unwrap(),
                to: eur(),
                rate: "0.9223390518".parse().unwrap(),
                date: chrono::NaiveDate::from_ymd_opt(2024, 5, 16).unwrap(),
            }),
        }),
        Event::ExchangeRatesUpdated(contracts::events::ExchangeRatesUpdated {
            base: eur(),
            date: chrono::NaiveDate::from_ymd_opt(2024, 5, 16).unwrap(),
            rates: vec![
                contracts::exchange::ExchangeRate {
                    currency: "USD".parse().unwrap(),
                    rate: "1.0842".parse().unwrap(),
                },
                contracts::exchange::ExchangeRate {
                    currency: "JPY".parse().unwrap(),
                    rate: "162.92".parse().unwrap(),
                },
            ],
        }),
        Event::OrderFailed(OrderFailed {
            order_id: order,
            customer: customer(),
            reason: FailureReason::PaymentDeclined,
            lines: reserved_lines(),
        }),
        Event::OrderFailed(OrderFailed {
            order_id: order,
            customer: customer(),
            reason: FailureReason::OutOfStock,
            lines: vec![],
        }),
        Event::OrderFailed(OrderFailed {
            order_id: order,
            customer: customer(),
            reason: FailureReason::PaymentTimeout,
            lines: reserved_lines(),
        }),
        Event::NotificationSent(NotificationSent {
            notification_id: id(30),
            order_id: order,
            kind: NotificationKind::Invoice,
            channel: Channel::Email,
        }),
        Event::NotificationFailed(NotificationFailed {
            notification_id: id(31),
            order_id: order,
            kind: NotificationKind::FailureNotice,
            channel: Channel::Email,
            error: "SMTP 554: mailbox unavailable".into(),
        }),
        Event::WebhookDelivered(WebhookDelivered {
            delivery_id: id(40),
            endpoint_id: id(41),
            event_id: id(42),
            event_type: "order.confirmed".into(),
            order_id: Some(order),
        }),
        Event::WebhookDelivered(WebhookDelivered {
            delivery_id: id(40),
            endpoint_id: id(41),
            event_id: id(42),
            event_type: "order.confirmed".into(),
            order_id: None,
        }),
        Event::WebhookFailed(WebhookFailed {
            delivery_id: id(43),
            endpoint_id: id(41),
            event_id: id(42),
            event_type: "payment.failed".into(),
            order_id: Some(order),
            error: "HTTP 500 after 8 attempts".into(),
        }),
        Event::OrderCancelled(OrderCancelled {
            order_id: order,
            customer: Customer { phone: Some("+14155550123".into()), ..customer() },
            previous_status: OrderStatus::Confirmed,
            cancelled_by: CancelledBy::Customer,
            currency: eur(),
            total_amount: amount("25.00"),
            lines: vec![ReservedLine { product_id: id(2), quantity: 1 }],
        }),
        Event::PaymentRefunded(PaymentRefunded {
            order_id: order,
            payment_id: id(50),
            refund_id: id(51),
            amount: amount("25.00"),
            currency: eur(),
        }),
        Event::PaymentVoided(PaymentVoided { order_id: order, payment_id: id(50) }),
        Event::WebhookEndpointDisabled(WebhookEndpointDisabled {
            endpoint_id: id(41),
            url: "https://shop.example/hooks".into(),
            reason: DisabledReason::Gone,
        }),
        Event::AccountRegistered(AccountRegistered {
            account_id: id(60),
            token_id: id(61),
            email: "ada@example.com".into(),
            name: "Ada Lovelace".into(),
            verification_link: SecretLink::new("https://shop.example/verify-email?token=abc".into()),
            expires_at: Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap(),
        }),
        Event::PasswordResetRequested(PasswordResetRequested {
            account_id: id(60),
            token_id: id(62),
            email: "ada@example.com".into(),
            name: "Ada Lovelace".into(),
            reset_link: SecretLink::new("https://shop.example/reset-password?token=def".into()),
            expires_at: Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
        }),
    ]
}

#[test]
fn account_links_never_show_in_debug_output() {
    let accounts: Vec<Event> = samples()
        .into_iter()
        .filter(|e| matches!(e, Event::AccountRegistered(_) | Event::PasswordResetRequested(_)))
        .collect();
    assert_eq!(accounts.len(), 2);
    for event in accounts {
        let shown = format!("{event:?}");
        assert!(!shown.contains("token=") && shown.contains("SecretLink(***)"), "{shown}");
        assert!(event.data().to_string().contains("token="), "the payload itself carries the link");
    }
}

/// Fails to compile when a variant is added without a sample above.
fn covered(event: &Event) -> &'static str {
    match event {
        Event::ProductUpserted(_)
        | Event::OrderCreated(_)
        | Event::StockReserved(_)
        | Event::StockRejected(_)
        | Event::StockCommitted(_)
        | Event::StockReleased(_)
        | Event::PaymentRequested(_)
        | Event::PaymentSucceeded(_)
        | Event::PaymentFailed(_)
        | Event::OrderConfirmed(_)
        | Event::OrderFailed(_)
        | Event::NotificationSent(_)
        | Event::NotificationFailed(_)
        | Event::WebhookDelivered(_)
        | Event::WebhookFailed(_)
        | Event::OrderCancelled(_)
        | Event::PaymentRefunded(_)
        | Event::PaymentVoided(_)
        | Event::WebhookEndpointDisabled(_)
        | Event::AccountRegistered(_)
        | Event::ExchangeRatesUpdated(_)
        | Event::PasswordResetRequested(_) => event.event_type(),
    }
}

fn envelope_json(event: &Event) -> Value {
    serde_json::to_value(Envelope::new("test", event)).unwrap()
}

fn assert_valid(event_type: &str, version: u32, instance: &Value) {
    let errs = errors(&validator(event_type, version), instance);
    assert!(
        errs.is_empty(),
        "{event_type} v{version} does not match its schema:\n  {}\n{}",
        errs.join("\n  "),
        serde_json::to_string_pretty(instance).unwrap()
    );
}

fn assert_rejected(event_type: &str, version: u32, instance: &Value, what: &str) {
    assert!(
        !validator(event_type, version).is_valid(instance),
        "{event_type} v{version}: the schema accepted {what}:\n{}",
        serde_json::to_string_pretty(instance).unwrap()
    );
}

#[test]
fn every_event_matches_its_schema() {
    let samples = samples();
    let sampled: BTreeSet<&str> = samples.iter().map(covered).collect();
    let types: BTreeSet<&str> = Event::TYPES.iter().map(|(t, _)| *t).collect();
    assert_eq!(sampled, types, "every event type needs a sample");

    for event in &samples {
        let json = envelope_json(event);
        assert_valid(event.event_type(), event.version(), &json);
        // The payload still decodes, so the samples are what producers really write.
        let back: Envelope = serde_json::from_value(json).unwrap();
        assert_eq!(back.event().unwrap(), *event);
    }
}

#[test]
fn envelopes_with_optional_attributes_match() {
    for event in samples() {
        let mut envelope = Envelope::new("order-api", &event);
        envelope.subject = Some(id(1).to_string());
        envelope.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
        let mut json = serde_json::to_value(&envelope).unwrap();
        assert_valid(event.event_type(), event.version(), &json);

        // Unknown fields are allowed in the envelope and the payload (forward compatibility).
        json["someextension"] = Value::from("x");
        json["data"]["added_in_v1_1"] = Value::from(42);
        assert_valid(event.event_type(), event.version(), &json);
    }
}

#[test]
fn schemas_refuse_broken_events() {
    let order_created =
        envelope_json(&samples().into_iter().find(|e| matches!(e, Event::OrderCreated(_))).unwrap());
    let payment_requested =
        envelope_json(&samples().into_iter().find(|e| matches!(e, Event::PaymentRequested(_))).unwrap());
    let mutate = |base: &Value, f: &dyn Fn(&mut Value)| {
        let mut value = base.clone();
        f(&mut value);
        value
    };

    // Amounts are strings with two decimals, never numbers.
    let numeric_total = mutate(&order_created, &|v| v["data"]["total_amount"] = serde_json::json!(2000.48));
    assert_rejected("order.created", 1, &numeric_total, "a numeric total_amount");
    let numeric_amount = mutate(&payment_requested, &|v| v["data"]["amount"] = serde_json::json!(2000.48));
    assert_rejected("payment.requested", 1, &numeric_amount, "a numeric amount");
    let one_decimal = mutate(&payment_requested, &|v| v["data"]["amount"] = Value::from("2000.5"));
    assert_rejected("payment.requested", 1, &one_decimal, "an amount with one decimal");
    let nested_numeric =
        mutate(&order_created, &|v| v["data"]["lines"][0]["unit_price"] = serde_json::json!(999.99));
    assert_rejected("order.created", 1, &nested_numeric, "a numeric unit_price in a line");

    // Required payload fields.
    let no_order_id = mutate(&order_created, &|v| {
        v["data"].as_object_mut().unwrap().remove("order_id");
    });
    assert_rejected("order.created", 1, &no_order_id, "data without order_id");
    let no_currency = mutate(&payment_requested, &|v| {
        v["data"].as_object_mut().unwrap().remove("currency");
    });
    assert_rejected("payment.requested", 1, &no_currency, "data without currency");
    let no_email = mutate(&order_created, &|v| {
        v["data"]["customer"].as_object_mut().unwrap().remove("email");
    });
    assert_rejected("order.created", 1, &no_email, "a customer without email");

    // Envelope attributes.
    let wrong_schema =
        mutate(&order_created, &|v| v["dataschema"] = Value::from("urn:orders:order.created:v2"));
    assert_rejected("order.created", 1, &wrong_schema, "a v2 dataschema");
    let other_schema =
        mutate(&order_created, &|v| v["dataschema"] = Value::from("urn:orders:payment.requested:v1"));
    assert_rejected("order.created", 1, &other_schema, "another type's dataschema");
    let wrong_type = mutate(&order_created, &|v| v["type"] = Value::from("order.confirmed"));
    assert_rejected("order.created", 1, &wrong_type, "another event type");
    let wrong_spec = mutate(&order_created, &|v| v["specversion"] = Value::from("0.3"));
    assert_rejected("order.created", 1, &wrong_spec, "specversion 0.3");
    let bad_id = mutate(&order_created, &|v| v["id"] = Value::from("not-a-uuid"));
    assert_rejected("order.created", 1, &bad_id, "a non-UUID id");
    let no_time = mutate(&order_created, &|v| {
        v.as_object_mut().unwrap().remove("time");
    });
    assert_rejected("order.created", 1, &no_time, "an envelope without time");

    // Typed values.
    let lower_currency = mutate(&payment_requested, &|v| v["data"]["currency"] = Value::from("eur"));
    assert_rejected("payment.requested", 1, &lower_currency, "a lower-case currency");
    let zero_quantity = mutate(&order_created, &|v| v["data"]["lines"][0]["quantity"] = Value::from(0));
    assert_rejected("order.created", 1, &zero_quantity, "a zero quantity");
    let no_lines = mutate(&order_created, &|v| v["data"]["lines"] = serde_json::json!([]));
    assert_rejected("order.created", 1, &no_lines, "an order without lines");

    let order_failed =
        envelope_json(&samples().into_iter().find(|e| matches!(e, Event::OrderFailed(_))).unwrap());
    let unknown_reason = mutate(&order_failed, &|v| v["data"]["reason"] = Value::from("cosmic_rays"));
    assert_rejected("order.failed", 1, &unknown_reason, "an unknown failure reason");
    let bad_date = mutate(
        &envelope_json(&samples().into_iter().find(|e| matches!(e, Event::OrderConfirmed(_))).unwrap()),
        &|v| v["data"]["placed_at"] = Value::from("17/05/2024"),
    );
    assert_rejected("order.confirmed", 1, &bad_date, "a non-RFC 3339 placed_at");
}

/// The schema's `reason` enum is exactly the contract's, so no reason reaches clients that the
/// schema does not name (and the admin expiry's `expired` is one of them).
#[test]
fn the_failure_reasons_of_the_schema_are_the_contracts() {
    let schema = load_schema("order.failed", 1);
    let listed: BTreeSet<&str> = schema["$defs"]["OrderFailed"]["properties"]["reason"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let ours: BTreeSet<&str> = FailureReason::VARIANTS.iter().map(|r| r.as_str()).collect();
    assert_eq!(listed, ours);
    assert_eq!(FailureReason::of_payment_code("payment_timeout"), FailureReason::PaymentTimeout);
    assert_eq!(FailureReason::of_payment_code("card_declined"), FailureReason::PaymentDeclined);
    assert_eq!(FailureReason::of_payment_code("insufficient_funds"), FailureReason::InsufficientFunds);
    assert_eq!(FailureReason::of_payment_code("anything_else"), FailureReason::PaymentFailed);
}

#[test]
fn a_payment_request_without_a_customer_still_reads_and_a_bad_customer_id_is_refused() {
    let with_customer = envelope_json(
        &samples()
            .into_iter()
            .find(|e| matches!(e, Event::PaymentRequested(r) if r.customer_id.is_some()))
            .unwrap(),
    );
    let mut older = with_customer.clone();
    older["data"].as_object_mut().unwrap().remove("customer_id");
    assert_valid("payment.requested", 1, &older);
    let back: Envelope = serde_json::from_value(older).unwrap();
    assert!(matches!(back.event().unwrap(), Event::PaymentRequested(r) if r.customer_id.is_none()));
    let mut bad = with_customer;
    bad["data"]["customer_id"] = Value::from("not-a-uuid");
    assert_rejected("payment.requested", 1, &bad, "a non-UUID customer_id");
}

#[test]
fn an_order_confirmation_without_a_link_still_reads_and_a_bad_link_is_refused() {
    let with_link = envelope_json(
        &samples()
            .into_iter()
            .find(|e| matches!(e, Event::OrderConfirmed(c) if c.order_link.is_some()))
            .unwrap(),
    );
    let mut older = with_link.clone();
    older["data"].as_object_mut().unwrap().remove("order_link");
    assert_valid("order.confirmed", 1, &older);
    let back: Envelope = serde_json::from_value(older).unwrap();
    assert!(matches!(back.event().unwrap(), Event::OrderConfirmed(c) if c.order_link.is_none()));
    let mut bad = with_link;
    bad["data"]["order_link"] = Value::from(42);
    assert_rejected("order.confirmed", 1, &bad, "a link that is not a string");
}

#[test]
fn schema_files_are_exactly_the_event_types() {
    let expected: BTreeSet<String> = Event::TYPES.iter().map(|(t, v)| format!("{t}.v{v}.json")).collect();
    let found: BTreeSet<String> = std::fs::read_dir(SCHEMA_DIR)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".json"))
        .collect();
    let missing: Vec<_> = expected.difference(&found).collect();
    let extra: Vec<_> = found.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "schema files out of step: missing {missing:?}, extra {extra:?}"
    );

    for (event_type, version) in Event::TYPES {
        let schema = load_schema(event_type, *version);
        let uri = contracts::envelope::schema_uri(event_type, *version);
        assert_eq!(schema["$id"], Value::from(uri.clone()), "{event_type}: $id");
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{event_type}: $schema"
        );
        assert_eq!(
            schema["properties"]["type"]["const"],
            Value::from(*event_type),
            "{event_type}: type const"
        );
        assert_eq!(
            schema["properties"]["dataschema"]["const"],
            Value::from(uri),
            "{event_type}: dataschema const"
        );
        assert_eq!(schema["properties"]["specversion"]["const"], "1.0", "{event_type}: specversion const");
        assert!(
            !serde_json::to_string(&schema).unwrap().contains("\"$ref\":\"urn:")
                && !serde_json::to_string(&schema).unwrap().contains(".json"),
            "{event_type}: schema files are self-contained (no cross-file $ref)"
        );
        let errs: Vec<String> = jsonschema::draft202012::meta::validate(&schema)
            .err()
            .map(|e| e.to_string())
            .into_iter()
            .collect();
        assert!(errs.is_empty(), "{event_type}: not a valid draft 2020-12 schema: {errs:?}");
    }
}

#[test]
fn the_asyncapi_document_names_every_event_type() {
    let text = std::fs::read_to_string(Path::new(SCHEMA_DIR).join("asyncapi.yaml")).unwrap();
    for (event_type, version) in Event::TYPES {
        assert!(
            text.contains(&format!("address: {event_type}\n")),
            "asyncapi.yaml lacks {event_type}; regenerate it (UPDATE_ASYNCAPI=1, system-tests topology)"
        );
        assert!(
            text.contains(&format!("'./{event_type}.v{version}.json'")),
            "asyncapi.yaml lacks the v{version} schema of {event_type}"
        );
    }
}

/// Rolling deploys: a newer producer (version N+1 of `order.created` within major v1) adds
/// optional fields; a consumer built against version N still decodes the event, and the schema
/// still accepts it. A breaking change would be `v2`, which an old consumer refuses loudly (to
/// its dead-letter queue) instead of misreading.
#[test]
fn a_consumer_of_version_n_accepts_what_version_n_plus_1_publishes() {
    let event = samples().into_iter().find(|e| e.event_type() == "order.created").unwrap();
    let mut newer = envelope_json(&event);
    newer["data"]["gift_message"] = serde_json::json!("Happy birthday!");
    newer["data"]["lines"][0]["warehouse"] = serde_json::json!("eu-west");
    newer["data"]["customer"]["loyalty_tier"] = serde_json::json!("gold");
    newer["partitionkey"] = serde_json::json!("tenant-7");
    let envelope: Envelope = serde_json::from_value(newer.clone()).unwrap();
    assert_eq!(envelope.event().unwrap(), event, "the old consumer reads the same order");
    assert_valid("order.created", 1, &newer);

    let mut breaking = newer;
    breaking["dataschema"] = serde_json::json!("urn:orders:order.created:v2");
    let envelope: Envelope = serde_json::from_value(breaking).unwrap();
    assert!(envelope.event().is_err(), "a new major version is refused, not misread");
}

/// An enumeration is stored by its `strum` name and sent by its serde name: the two must be one.
fn names_agree<T>(variants: &[T])
where
    T: Copy + std::fmt::Debug + PartialEq + serde::Serialize + std::str::FromStr + Into<&'static str>,
{
    for &variant in variants {
        let stored: &'static str = variant.into();
        assert_eq!(serde_json::to_value(variant).unwrap(), Value::from(stored), "{variant:?}");
        assert!(stored.parse::<T>().is_ok_and(|back| back == variant), "{variant:?} reads back");
    }
    assert!("no_such_name".parse::<T>().is_err());
}

#[test]
fn every_enumeration_has_one_name_on_the_wire_and_in_the_database() {
    names_agree(FailureReason::VARIANTS);
    names_agree(NotificationKind::VARIANTS);
    names_agree(Channel::VARIANTS);
    names_agree(OrderStatus::VARIANTS);
    names_agree(DisabledReason::VARIANTS);
    names_agree(CancelledBy::VARIANTS);
}
