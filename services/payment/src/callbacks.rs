//! Provider callbacks: verified (signature and timestamp) before anything is read, recorded
//! once per provider event id, and applied through the transition table, so duplicates,
//! replays, unknown events and out-of-order events are harmless.

use crate::lifecycle::{self, Policy};
use crate::provider::{intent_from_json, signature};
use crate::store::{self, log};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use platform::db::PgPool;
use platform::settings::Secret;

/// Intent events we act on; anything else is recorded and ignored.
const INTENT_EVENTS: [&str; 5] = [
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.requires_action",
    "payment_intent.processing",
    "payment_intent.canceled",
];

#[derive(Clone)]
pub struct Callbacks {
    pub pool: PgPool,
    pub provider: &'static str,
    pub secret: Secret,
    pub tolerance_seconds: i64,
    pub policy: Policy,
}

#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("no provider `{0}` here")]
    UnknownProvider(String),
    #[error(transparent)]
    Signature(#[from] signature::SignatureError),
    #[error("the callback body is not a provider event: {0}")]
    Malformed(String),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error(transparent)]
    Pool(#[from] diesel_async::pooled_connection::deadpool::PoolError),
}

impl Callbacks {
    /// Verifies and applies one callback; answers what became of it (`applied`, `ignored`,
    /// `duplicate`, `unknown_payment`).
    pub async fn receive(
        &self,
        provider: &str,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<&'static str, CallbackError> {
        if provider != self.provider {
            return Err(CallbackError::UnknownProvider(provider.to_owned()));
        }
        let now = chrono::Utc::now().timestamp();
        signature::verify(self.secret.expose(), signature, body, now, self.tolerance_seconds)?;
        let event: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| CallbackError::Malformed(e.to_string()))?;
        let (Some(event_id), Some(event_type)) = (event["id"].as_str(), event["type"].as_str()) else {
            return Err(CallbackError::Malformed("`id` and `type` are required".into()));
        };
        let intent = intent_from_json(&event["data"]["object"]);
        let mut pooled = self.pool.get().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let outcome = conn
            .transaction(async |conn: &mut AsyncPgConnection| {
                if !log::provider_event(conn, provider, event_id, event_type).await? {
                    return Ok::<_, diesel::result::Error>("duplicate");
                }
                let payment = match &intent {
                    Some(intent) => store::lock_by_provider_ref(conn, provider, &intent.id).await?,
                    None => None,
                };
                let (payment_id, outcome) = match (payment, &intent) {
                    (Some(payment), Some(intent)) if INTENT_EVENTS.contains(&event_type) => {
                        let cause = format!("callback:{event_id}");
                        let moved =
                            lifecycle::apply_intent(conn, &payment, intent, &cause, &self.policy).await?;
                        (Some(payment.id), if moved { "applied" } else { "ignored" })
                    }
                    (Some(payment), _) => (Some(payment.id), "ignored"),
                    (None, _) if INTENT_EVENTS.contains(&event_type) => (None, "unknown_payment"),
                    (None, _) => (None, "ignored"),
                };
                log::provider_event_outcome(conn, provider, event_id, payment_id, outcome).await?;
                Ok(outcome)
            })
            .await?;
        tracing::info!(provider, event_id, event_type, outcome, "provider callback");
        metrics::counter!("payment_callbacks_total", "outcome" => outcome).increment(1);
        Ok(outcome)
    }
}
