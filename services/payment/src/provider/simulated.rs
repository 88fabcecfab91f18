//! The built-in simulated provider. The payment method decides the outcome, so every path is
//! reproducible (like Stripe's test cards). Its state is kept in its own tables and it is
//! idempotent on the key, so a worker that crashes after a call and retries charges once.
//!
//! | method | confirm answers |
//! |---|---|
//! | `pm_card_ok` | succeeded |
//! | `pm_card_declined` | failed, `card_declined` (`generic_decline`) |
//! | `pm_card_insufficient_funds` | failed, `insufficient_funds` |
//! | `pm_card_requires_action` | requires_action; `/payments/simulator/{id}/complete` or `/fail` decides |
//! | `pm_card_flaky` | a transient error on the first two calls, then succeeded |
//! | `pm_card_no_callback` | requires_action, forever (the grace period decides) |
//! | anything else | failed, `unsupported_payment_method` |

use super::{CreateIntent, Intent, IntentStatus, Provider, ProviderError, RefundReceipt, signature};
use crate::store::sim::{self, SimIntent, SimStatus};
use bigdecimal::BigDecimal;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures_util::future::BoxFuture;
use platform::db::PgPool;

pub const NAME: &str = "simulated";
const FLAKY_FAILURES: i32 = 2;

pub struct Simulated {
    pub pool: PgPool,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("no such intent")]
    NotFound,
    #[error("the intent is not waiting on the customer")]
    NotAwaitingAction,
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// An intent's new status and, for a failure, its code and decline code.
type Decision = (SimStatus, Option<(&'static str, &'static str)>);

/// What confirming an intent paid with `method` does, on its `call`-th confirmation.
fn decide(method: &str, call: i32) -> Result<Decision, ProviderError> {
    Ok(match method {
        "pm_card_ok" => (SimStatus::Succeeded, None),
        "pm_card_declined" => (SimStatus::Failed, Some(("card_declined", "generic_decline"))),
        "pm_card_insufficient_funds" => {
            (SimStatus::Failed, Some(("insufficient_funds", "insufficient_funds")))
        }
        "pm_card_requires_action" | "pm_card_no_callback" => (SimStatus::RequiresAction, None),
        "pm_card_flaky" if call <= FLAKY_FAILURES => {
            return Err(ProviderError::Transient(format!("simulated 503 (call {call})")));
        }
        "pm_card_flaky" => (SimStatus::Succeeded, None),
        _ => (SimStatus::Failed, Some(("unsupported_payment_method", "unsupported_payment_method"))),
    })
}

fn intent(row: &SimIntent) -> Intent {
    let status = match row.status {
        SimStatus::Succeeded => IntentStatus::Succeeded,
        SimStatus::RequiresAction => IntentStatus::RequiresAction,
        SimStatus::Canceled => IntentStatus::Canceled,
        SimStatus::Failed => {
            let code = row.failure_code.clone().unwrap_or_else(|| "card_declined".into());
            IntentStatus::Failed {
                message: format!("The simulated provider declined the payment ({code})"),
                code,
                decline_code: row.decline_code.clone(),
            }
        }
        SimStatus::RequiresConfirmation => IntentStatus::RequiresConfirmation,
    };
    Intent { id: row.id.clone(), status }
}

fn db(error: impl std::fmt::Display) -> ProviderError {
    ProviderError::Transient(format!("simulator storage: {error}"))
}

impl From<diesel::result::Error> for SimError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Provider(db(error))
    }
}

/// What a call does to one locked intent.
enum Op<'a> {
    Retrieve,
    Confirm { call: i32 },
    Cancel,
    CustomerAction { succeed: bool },
    Refund { key: &'a str, amount: &'a BigDecimal },
}

enum Answer {
    Intent(Intent),
    Refund(String),
}

async fn apply(conn: &mut AsyncPgConnection, row: SimIntent, op: &Op<'_>) -> Result<Answer, SimError> {
    let (status, failure) = match op {
        Op::Retrieve => return Ok(Answer::Intent(intent(&row))),
        Op::Confirm { .. } if row.status != SimStatus::RequiresConfirmation => {
            return Ok(Answer::Intent(intent(&row)));
        }
        Op::Confirm { call } => decide(&row.payment_method, *call)?,
        Op::Cancel if !matches!(row.status, SimStatus::RequiresConfirmation | SimStatus::RequiresAction) => {
            return Ok(Answer::Intent(intent(&row)));
        }
        Op::Cancel => (SimStatus::Canceled, None),
        Op::CustomerAction { .. } if row.status != SimStatus::RequiresAction => {
            return Err(SimError::NotAwaitingAction);
        }
        Op::CustomerAction { succeed: true } => (SimStatus::Succeeded, None),
        Op::CustomerAction { succeed: false } => {
            (SimStatus::Failed, Some(("payment_intent_authentication_failure", "authentication_failed")))
        }
        Op::Refund { .. } if row.status != SimStatus::Succeeded => {
            let refused = format!("intent {} is {}, not succeeded", row.id, row.status);
            return Err(SimError::Provider(ProviderError::Permanent(refused)));
        }
        Op::Refund { key, amount } => {
            return Ok(Answer::Refund(sim::refund(conn, key, &row.id, amount).await?));
        }
    };
    sim::set_status(conn, &row.id, status, failure).await?;
    Ok(Answer::Intent(intent(&SimIntent {
        status,
        failure_code: failure.map(|f| f.0.into()),
        decline_code: failure.map(|f| f.1.into()),
        ..row
    })))
}

impl Simulated {
    async fn call(&self, id: &str, op: Op<'_>) -> Result<Answer, SimError> {
        let mut pooled = self.pool.get().await.map_err(db)?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction(async |conn: &mut AsyncPgConnection| {
            let row = sim::lock(conn, id).await?.ok_or(SimError::NotFound)?;
            apply(conn, row, &op).await
        })
        .await
    }

    async fn intent_call(&self, id: &str, op: Op<'_>) -> Result<Intent, ProviderError> {
        match self.call(id, op).await {
            Ok(Answer::Intent(intent)) => Ok(intent),
            Ok(Answer::Refund(_)) => Err(ProviderError::Permanent("unexpected refund answer".into())),
            Err(SimError::Provider(error)) => Err(error),
            Err(other) => Err(ProviderError::Permanent(other.to_string())),
        }
    }

    /// The customer finished (or abandoned) the action the intent waits on.
    pub async fn customer_action(&self, intent_id: &str, succeed: bool) -> Result<Intent, SimError> {
        match self.call(intent_id, Op::CustomerAction { succeed }).await? {
            Answer::Intent(intent) => Ok(intent),
            Answer::Refund(_) => Err(SimError::NotAwaitingAction),
        }
    }
}

impl Provider for Simulated {
    fn name(&self) -> &'static str {
        NAME
    }

    fn create<'a>(&'a self, request: &'a CreateIntent) -> BoxFuture<'a, Result<Intent, ProviderError>> {
        Box::pin(async move {
            let mut conn = self.pool.get().await.map_err(db)?;
            let key = &request.idempotency_key;
            let row =
                sim::create(&mut conn, key, &request.payment_method, &request.amount, &request.currency)
                    .await
                    .map_err(db)?;
            Ok(intent(&row))
        })
    }

    fn confirm<'a>(
        &'a self,
        intent_id: &'a str,
        _key: &'a str,
    ) -> BoxFuture<'a, Result<Intent, ProviderError>> {
        Box::pin(async move {
            // The call counter commits even when the call "fails", as a provider's logs would.
            let call = {
                let mut conn = self.pool.get().await.map_err(db)?;
                sim::count_confirm_call(&mut conn, intent_id).await.map_err(db)?
            };
            self.intent_call(intent_id, Op::Confirm { call }).await
        })
    }

    fn retrieve<'a>(&'a self, intent_id: &'a str) -> BoxFuture<'a, Result<Intent, ProviderError>> {
        Box::pin(self.intent_call(intent_id, Op::Retrieve))
    }

    fn cancel<'a>(
        &'a self,
        intent_id: &'a str,
        _key: &'a str,
    ) -> BoxFuture<'a, Result<Intent, ProviderError>> {
        Box::pin(self.intent_call(intent_id, Op::Cancel))
    }

    fn refund<'a>(
        &'a self,
        intent_id: &'a str,
        amount: &'a BigDecimal,
        key: &'a str,
    ) -> BoxFuture<'a, Result<RefundReceipt, ProviderError>> {
        Box::pin(async move {
            match self.call(intent_id, Op::Refund { key, amount }).await {
                Ok(Answer::Refund(id)) => Ok(RefundReceipt { id }),
                Ok(Answer::Intent(_)) => Err(ProviderError::Permanent("unexpected intent answer".into())),
                Err(SimError::Provider(error)) => Err(error),
                Err(other) => Err(ProviderError::Permanent(other.to_string())),
            }
        })
    }
}

/// The callback the simulator sends for `intent`: its body and `Stripe-Signature` header.
pub fn signed_callback(secret: &str, intent: &Intent, payment_id: contracts::PaymentId) -> (String, Vec<u8>) {
    let event_type = match intent.status {
        IntentStatus::Succeeded => "payment_intent.succeeded",
        IntentStatus::Failed { .. } => "payment_intent.payment_failed",
        IntentStatus::RequiresAction => "payment_intent.requires_action",
        IntentStatus::Canceled => "payment_intent.canceled",
        IntentStatus::Processing | IntentStatus::RequiresConfirmation => "payment_intent.processing",
    };
    let now = chrono::Utc::now().timestamp();
    let body = serde_json::json!({
        "id": format!("evt_sim_{}", uuid::Uuid::now_v7().simple()),
        "object": "event", "type": event_type, "created": now,
        "data": {"object": super::intent_to_json(intent, Some(payment_id.as_uuid()))},
    });
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    (signature::sign(secret, now, &bytes), bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_test_method_has_its_outcome() {
        assert_eq!(decide("pm_card_ok", 1), Ok((SimStatus::Succeeded, None)));
        assert_eq!(
            decide("pm_card_declined", 1),
            Ok((SimStatus::Failed, Some(("card_declined", "generic_decline"))))
        );
        assert!(matches!(
            decide("pm_card_insufficient_funds", 1),
            Ok((SimStatus::Failed, Some(("insufficient_funds", _))))
        ));
        assert_eq!(decide("pm_card_requires_action", 1), Ok((SimStatus::RequiresAction, None)));
        assert_eq!(decide("pm_card_no_callback", 1), Ok((SimStatus::RequiresAction, None)));
        assert!(matches!(decide("pm_card_flaky", 1), Err(ProviderError::Transient(_))));
        assert!(matches!(decide("pm_card_flaky", 2), Err(ProviderError::Transient(_))));
        assert_eq!(decide("pm_card_flaky", 3), Ok((SimStatus::Succeeded, None)));
        assert!(matches!(
            decide("pm_other", 1),
            Ok((SimStatus::Failed, Some(("unsupported_payment_method", _))))
        ));
    }
}
