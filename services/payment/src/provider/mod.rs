//! Payment providers behind one trait, chosen by configuration: the built-in simulated
//! provider and an adapter for Stripe's PaymentIntents and Refunds API. Both speak Stripe's
//! shapes (intents, `t=…,v1=…` signed callbacks), so callbacks are handled once.

pub mod signature;
pub mod simulated;
pub mod stripe;

use bigdecimal::BigDecimal;
use futures_util::future::BoxFuture;
use serde_json::Value;
use uuid::Uuid;

/// What the worker asks the provider to create (not yet charge).
#[derive(Debug, Clone)]
pub struct CreateIntent {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub amount: BigDecimal,
    pub currency: String,
    pub payment_method: String,
    /// `pay_<payment_id>_<attempt>`: a retry after a crash gets the same intent back.
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntentStatus {
    RequiresConfirmation,
    Processing,
    RequiresAction,
    Succeeded,
    Failed { code: String, decline_code: Option<String>, message: String },
    Canceled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub id: String,
    pub status: IntentStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundReceipt {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Worth retrying with the same idempotency key: 5xx, 429, timeouts, refused connections.
    #[error("transient provider error: {0}")]
    Transient(String),
    /// Retrying cannot help: the request itself is wrong (4xx).
    #[error("provider refused the request: {0}")]
    Permanent(String),
}

pub trait Provider: Send + Sync + 'static {
    /// The name in `/payments/callbacks/{provider}` and in `payments.provider`.
    fn name(&self) -> &'static str;
    fn create<'a>(&'a self, request: &'a CreateIntent) -> BoxFuture<'a, Result<Intent, ProviderError>>;
    fn confirm<'a>(
        &'a self,
        intent_id: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Intent, ProviderError>>;
    fn retrieve<'a>(&'a self, intent_id: &'a str) -> BoxFuture<'a, Result<Intent, ProviderError>>;
    /// Cancels an open intent; answers the intent as it now is (a succeeded one stays so).
    fn cancel<'a>(&'a self, intent_id: &'a str, key: &'a str)
    -> BoxFuture<'a, Result<Intent, ProviderError>>;
    fn refund<'a>(
        &'a self,
        intent_id: &'a str,
        amount: &'a BigDecimal,
        key: &'a str,
    ) -> BoxFuture<'a, Result<RefundReceipt, ProviderError>>;
}

/// Reads a Stripe PaymentIntent object (API answers and callback `data.object`).
pub fn intent_from_json(object: &Value) -> Option<Intent> {
    let id = object.get("id")?.as_str()?.to_owned();
    let error = object.get("last_payment_error").filter(|e| !e.is_null());
    let status = match object.get("status")?.as_str()? {
        "succeeded" | "requires_capture" => IntentStatus::Succeeded,
        "processing" => IntentStatus::Processing,
        "requires_action" => IntentStatus::RequiresAction,
        "canceled" => IntentStatus::Canceled,
        "requires_payment_method" if error.is_some() => failed(error),
        _ => IntentStatus::RequiresConfirmation,
    };
    Some(Intent { id, status })
}

/// Maps Stripe's `code` / `decline_code` to the codes `payment.failed` carries.
fn failed(error: Option<&Value>) -> IntentStatus {
    let text = |key: &str| error.and_then(|e| e.get(key)).and_then(Value::as_str).map(str::to_owned);
    let decline_code = text("decline_code");
    let code = match (text("code").as_deref(), decline_code.as_deref()) {
        (_, Some("insufficient_funds")) | (Some("insufficient_funds"), _) => "insufficient_funds".to_owned(),
        (Some(code), _) => code.to_owned(),
        (None, _) => "card_declined".to_owned(),
    };
    let message = text("message").unwrap_or_else(|| "The payment failed".to_owned());
    IntentStatus::Failed { code, decline_code, message }
}

/// The Stripe-shaped JSON of an intent (the simulator answers and signs these).
pub fn intent_to_json(intent: &Intent, payment_id: Option<Uuid>) -> Value {
    let (status, error) = match &intent.status {
        IntentStatus::RequiresConfirmation => ("requires_confirmation", Value::Null),
        IntentStatus::Processing => ("processing", Value::Null),
        IntentStatus::RequiresAction => ("requires_action", Value::Null),
        IntentStatus::Succeeded => ("succeeded", Value::Null),
        IntentStatus::Canceled => ("canceled", Value::Null),
        IntentStatus::Failed { code, decline_code, message } => (
            "requires_payment_method",
            serde_json::json!({"code": code, "decline_code": decline_code, "message": message}),
        ),
    };
    serde_json::json!({
        "id": intent.id, "object": "payment_intent", "status": status,
        "last_payment_error": error,
        "metadata": {"payment_id": payment_id.map(|id| id.to_string())},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripe_intents_map_to_our_outcomes() {
        let declined = serde_json::json!({"id": "pi_1", "status": "requires_payment_method",
            "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds", "message": "No"}});
        assert_eq!(
            intent_from_json(&declined).map(|i| i.status),
            Some(IntentStatus::Failed {
                code: "insufficient_funds".into(),
                decline_code: Some("insufficient_funds".into()),
                message: "No".into()
            })
        );
        for (raw, status) in [
            ("succeeded", IntentStatus::Succeeded),
            ("requires_action", IntentStatus::RequiresAction),
            ("requires_payment_method", IntentStatus::RequiresConfirmation),
            ("canceled", IntentStatus::Canceled),
        ] {
            let json = serde_json::json!({"id": "pi_2", "status": raw});
            assert_eq!(intent_from_json(&json).map(|i| i.status), Some(status));
        }
        let round = Intent { id: "pi_3".into(), status: IntentStatus::RequiresAction };
        assert_eq!(intent_from_json(&intent_to_json(&round, None)), Some(round));
    }
}
