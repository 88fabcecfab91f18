//! The Stripe adapter against a real HTTP server on loopback that plays Stripe: request
//! shapes, the Idempotency-Key header, retries on 5xx, none on 4xx, timeouts.

#![expect(clippy::unwrap_used, reason = "a test should stop at the first unexpected value")]

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use bigdecimal::BigDecimal;
use payment::provider::stripe::Stripe;
use payment::provider::{CreateIntent, IntentStatus, Provider, ProviderError};
use platform::settings::Secret;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    idempotency_key: Option<String>,
    authorization: Option<String>,
    body: String,
}

/// Answers each request with the next scripted (status, body, delay); records every request.
#[derive(Clone, Default)]
struct FakeStripe {
    script: Arc<Mutex<VecDeque<(u16, Value, u64)>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeStripe {
    async fn start(script: Vec<(u16, Value, u64)>) -> (Self, String) {
        let fake = Self { script: Arc::new(Mutex::new(script.into())), ..Self::default() };
        let state = fake.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            let state = state.clone();
            App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
                let state = state.clone();
                async move {
                    let header =
                        |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
                    state.seen.lock().unwrap().push(Seen {
                        method: req.method().to_string(),
                        path: req.path().to_owned(),
                        idempotency_key: header("idempotency-key"),
                        authorization: header("authorization"),
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                    let (status, body, delay) =
                        state.script.lock().unwrap().pop_front().unwrap_or((500, json!({}), 0));
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(body)
                }
            }))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        (fake, format!("http://127.0.0.1:{port}"))
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn adapter(base: &str, timeout_ms: u64, retries: u32) -> Stripe {
    Stripe::new(base, Secret::new("sk_test_123"), Duration::from_millis(timeout_ms), retries)
        .unwrap()
        .with_retry_base(Duration::from_millis(10))
}

fn intent(status: &str) -> Value {
    json!({"id": "pi_123", "object": "payment_intent", "status": status})
}

#[tokio::test]
async fn create_sends_the_form_the_key_and_the_api_key() {
    let (fake, base) = FakeStripe::start(vec![(200, intent("requires_confirmation"), 0)]).await;
    let payment_id = uuid::Uuid::now_v7();
    let request = CreateIntent {
        payment_id,
        order_id: uuid::Uuid::now_v7(),
        amount: BigDecimal::from_str("42.50").unwrap(),
        currency: "EUR".into(),
        payment_method: "pm_card_visa".into(),
        idempotency_key: format!("pay_{payment_id}_1"),
    };
    let created = adapter(&base, 1000, 2).create(&request).await.unwrap();
    assert_eq!((created.id.as_str(), created.status), ("pi_123", IntentStatus::RequiresConfirmation));
    let seen = fake.seen();
    assert_eq!((seen[0].method.as_str(), seen[0].path.as_str()), ("POST", "/v1/payment_intents"));
    assert_eq!(seen[0].idempotency_key.as_deref(), Some(format!("pay_{payment_id}_1").as_str()));
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer sk_test_123"));
    for field in [
        "amount=4250",
        "currency=eur",
        "payment_method=pm_card_visa",
        &format!("metadata%5Bpayment_id%5D={payment_id}"),
    ] {
        assert!(seen[0].body.contains(field), "{field} missing from {}", seen[0].body);
    }
}

#[tokio::test]
async fn server_errors_are_retried_with_the_same_key_and_client_errors_are_not() {
    let script = vec![
        (503, json!({}), 0),
        (500, json!({}), 0),
        (200, intent("succeeded"), 0),
        (400, json!({"error": {"message": "No such payment_intent"}}), 0),
    ];
    let (fake, base) = FakeStripe::start(script).await;
    let stripe = adapter(&base, 1000, 2);
    let confirmed = stripe.confirm("pi_123", "pay_x_1_confirm").await.unwrap();
    assert_eq!(confirmed.status, IntentStatus::Succeeded);
    let seen = fake.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|s| s.path == "/v1/payment_intents/pi_123/confirm"
        && s.idempotency_key.as_deref() == Some("pay_x_1_confirm")));
    let missing = stripe.retrieve("pi_missing").await;
    assert!(
        matches!(missing, Err(ProviderError::Permanent(ref m)) if m.contains("No such payment_intent")),
        "{missing:?}"
    );
    assert_eq!(fake.seen().len(), 4, "a 4xx is not retried");
    assert_eq!(fake.seen()[3].method, "GET");
}

#[tokio::test]
async fn retries_are_bounded_and_end_in_a_transient_error() {
    let (fake, base) = FakeStripe::start(vec![
        (502, json!({}), 0),
        (503, json!({}), 0),
        (500, json!({}), 0),
        (200, intent("succeeded"), 0),
    ])
    .await;
    let result = adapter(&base, 1000, 2).retrieve("pi_123").await;
    assert!(matches!(result, Err(ProviderError::Transient(_))), "{result:?}");
    assert_eq!(fake.seen().len(), 3, "one call and two retries");
}

#[tokio::test]
async fn a_slow_provider_times_out_as_a_transient_error() {
    let (fake, base) =
        FakeStripe::start(vec![(200, intent("succeeded"), 1000), (200, intent("succeeded"), 1000)]).await;
    let result = adapter(&base, 100, 1).retrieve("pi_123").await;
    assert!(matches!(result, Err(ProviderError::Transient(ref m)) if m.contains("timed out")), "{result:?}");
    assert_eq!(fake.seen().len(), 2);
}

#[tokio::test]
async fn a_declined_card_is_an_answer_with_its_decline_code() {
    let declined = json!({"error": {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.",
        "payment_intent": {"id": "pi_123", "object": "payment_intent", "status": "requires_payment_method"}}});
    let (_fake, base) = FakeStripe::start(vec![(402, declined, 0)]).await;
    let answer = adapter(&base, 1000, 2).confirm("pi_123", "k").await.unwrap();
    assert_eq!(
        answer.status,
        IntentStatus::Failed {
            code: "insufficient_funds".into(),
            decline_code: Some("insufficient_funds".into()),
            message: "Your card has insufficient funds.".into()
        }
    );
}

#[tokio::test]
async fn refunds_and_cancels_speak_stripe() {
    let script = vec![
        (200, json!({"id": "re_1", "object": "refund", "status": "succeeded"}), 0),
        (
            400,
            json!({"error": {"message": "You cannot cancel this PaymentIntent because it has a status of succeeded."}}),
            0,
        ),
        (200, intent("succeeded"), 0),
    ];
    let (fake, base) = FakeStripe::start(script).await;
    let stripe = adapter(&base, 1000, 2);
    let receipt =
        stripe.refund("pi_123", &BigDecimal::from_str("10.00").unwrap(), "refund_p_1").await.unwrap();
    assert_eq!(receipt.id, "re_1");
    let seen = fake.seen();
    assert_eq!(
        (seen[0].path.as_str(), seen[0].idempotency_key.as_deref()),
        ("/v1/refunds", Some("refund_p_1"))
    );
    assert_eq!(seen[0].body, "payment_intent=pi_123&amount=1000");
    let cancelled = stripe.cancel("pi_123", "void_p").await.unwrap();
    assert_eq!(cancelled.status, IntentStatus::Succeeded, "a finished intent answers what it is");
    assert_eq!(fake.seen()[1].path, "/v1/payment_intents/pi_123/cancel");
}
