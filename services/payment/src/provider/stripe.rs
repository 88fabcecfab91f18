//! The subset of Stripe's PaymentIntents and Refunds API we need, over reqwest: create with an
//! `Idempotency-Key`, confirm, retrieve, cancel, refund. Form-encoded requests (reqwest's
//! `form`), bearer auth, a timeout per request; 5xx, 429, 409 (idempotent request in flight),
//! timeouts and refused connections are retried a few times with exponential backoff and
//! jitter (`backon`), other 4xx never.

use super::{CreateIntent, Intent, IntentStatus, Provider, ProviderError, RefundReceipt, intent_from_json};
use backon::{ExponentialBuilder, Retryable};
use bigdecimal::BigDecimal;
use futures_util::future::BoxFuture;
use platform::settings::Secret;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::Duration;

pub const NAME: &str = "stripe";

pub struct Stripe {
    client: reqwest::Client,
    base: String,
    api_key: Secret,
    max_retries: u32,
    retry_base: Duration,
}

impl Stripe {
    pub fn new(
        base: &str,
        api_key: Secret,
        timeout: Duration,
        max_retries: u32,
    ) -> Result<Self, ProviderError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| ProviderError::Permanent(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            api_key,
            max_retries,
            retry_base: Duration::from_millis(200),
        })
    }

    /// The first wait between quick retries (doubled each time, plus up to as much again of
    /// random jitter).
    pub fn with_retry_base(mut self, base: Duration) -> Self {
        self.retry_base = base;
        self
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        form: &[(&str, String)],
        key: Option<&str>,
    ) -> Result<Value, ProviderError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.retry_base)
            .with_jitter()
            .with_max_times(self.max_retries as usize);
        (|| self.once(method.clone(), path, form, key))
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|error| matches!(error, ProviderError::Transient(_)))
            .notify(|error, wait| tracing::warn!(%error, path, ?wait, "stripe call failed; retrying"))
            .await
    }

    async fn once(
        &self,
        method: Method,
        path: &str,
        form: &[(&str, String)],
        key: Option<&str>,
    ) -> Result<Value, ProviderError> {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(self.api_key.expose());
        if method == Method::POST {
            request = request.form(form);
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().await.map_err(|e| {
            let kind = if e.is_timeout() { "timed out" } else { "unreachable" };
            ProviderError::Transient(format!("stripe {kind}: {e}"))
        })?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let error = &body["error"];
        // A declined card is an answer, not an error: the intent comes back inside.
        if status == StatusCode::PAYMENT_REQUIRED && error["payment_intent"].is_object() {
            let mut intent = error["payment_intent"].clone();
            if intent["last_payment_error"].is_null() {
                intent["last_payment_error"] = error.clone();
            }
            return Ok(intent);
        }
        let message = format!("{status}: {}", error["message"].as_str().unwrap_or("no message"));
        if status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::CONFLICT
        {
            Err(ProviderError::Transient(message))
        } else {
            Err(ProviderError::Permanent(message))
        }
    }

    fn intent(body: Value) -> Result<Intent, ProviderError> {
        intent_from_json(&body)
            .ok_or_else(|| ProviderError::Permanent(format!("not a PaymentIntent: {body}")))
    }
}

/// Amounts in the currency's minor unit, as Stripe wants them (two-decimal currencies).
pub fn minor_units(amount: &BigDecimal) -> String {
    (amount * BigDecimal::from(100)).with_scale(0).to_string()
}

impl Provider for Stripe {
    fn name(&self) -> &'static str {
        NAME
    }

    fn create<'a>(&'a self, request: &'a CreateIntent) -> BoxFuture<'a, Result<Intent, ProviderError>> {
        Box::pin(async move {
            let form = [
                ("amount", minor_units(&request.amount)),
                ("currency", request.currency.to_lowercase()),
                ("payment_method", request.payment_method.clone()),
                ("metadata[payment_id]", request.payment_id.to_string()),
                ("metadata[order_id]", request.order_id.to_string()),
            ];
            let body =
                self.call(Method::POST, "/v1/payment_intents", &form, Some(&request.idempotency_key)).await?;
            Self::intent(body)
        })
    }

    fn confirm<'a>(
        &'a self,
        intent_id: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Intent, ProviderError>> {
        Box::pin(async move {
            let path = format!("/v1/payment_intents/{intent_id}/confirm");
            Self::intent(self.call(Method::POST, &path, &[], Some(key)).await?)
        })
    }

    fn retrieve<'a>(&'a self, intent_id: &'a str) -> BoxFuture<'a, Result<Intent, ProviderError>> {
        Box::pin(async move {
            Self::intent(
                self.call(Method::GET, &format!("/v1/payment_intents/{intent_id}"), &[], None).await?,
            )
        })
    }

    fn cancel<'a>(
        &'a self,
        intent_id: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Intent, ProviderError>> {
        Box::pin(async move {
            let path = format!("/v1/payment_intents/{intent_id}/cancel");
            match self.call(Method::POST, &path, &[], Some(key)).await {
                Ok(body) => Self::intent(body),
                // Stripe refuses to cancel a finished intent; what it is now is the answer.
                Err(ProviderError::Permanent(_)) => {
                    let now = self.retrieve(intent_id).await?;
                    match now.status {
                        IntentStatus::Succeeded | IntentStatus::Canceled | IntentStatus::Failed { .. } => {
                            Ok(now)
                        }
                        _ => Err(ProviderError::Permanent(format!("intent {intent_id} cannot be cancelled"))),
                    }
                }
                Err(other) => Err(other),
            }
        })
    }

    fn refund<'a>(
        &'a self,
        intent_id: &'a str,
        amount: &'a BigDecimal,
        key: &'a str,
    ) -> BoxFuture<'a, Result<RefundReceipt, ProviderError>> {
        Box::pin(async move {
            let form = [("payment_intent", intent_id.to_owned()), ("amount", minor_units(amount))];
            let body = self.call(Method::POST, "/v1/refunds", &form, Some(key)).await?;
            match body["id"].as_str() {
                Some(id) => Ok(RefundReceipt { id: id.to_owned() }),
                None => Err(ProviderError::Permanent(format!("not a Refund: {body}"))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn amounts_go_in_minor_units() {
        let amount = BigDecimal::from_str("1999.98").unwrap_or_default();
        assert_eq!(minor_units(&amount), "199998");
    }
}
