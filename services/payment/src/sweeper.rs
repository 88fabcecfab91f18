//! The scheduled expiry: open payments whose grace period ran out are cancelled at the
//! provider and failed with `payment_timeout`. One replica at a time runs it (a session
//! advisory lock); the row lock and the transition table make each expiry happen once anyway.

use crate::lifecycle::{self, Policy};
use crate::provider::{IntentStatus, Provider};
use crate::store::{self, Payment};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use platform::db::{AdvisoryLock, PgPool};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

const BATCH: i64 = 100;

pub struct Sweeper {
    pub pool: PgPool,
    pub provider: Arc<dyn Provider>,
    pub policy: Policy,
    pub interval: Duration,
}

impl Sweeper {
    pub async fn run(self, cancel: CancellationToken) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = cancel.cancelled() => return,
            }
            if let Err(error) = self.sweep_once().await {
                tracing::warn!(%error, "payment expiry sweep failed; will retry");
            }
        }
    }

    /// Runs one sweep if no other replica is running one; returns how many payments expired.
    pub async fn sweep_once(&self) -> anyhow::Result<usize> {
        let Some(held) = AdvisoryLock::named("payment.sweeper").try_hold(&self.pool).await? else {
            return Ok(0);
        };
        let outcome = self.expire_due().await;
        held.release().await?;
        outcome
    }

    async fn expire_due(&self) -> anyhow::Result<usize> {
        let due = {
            let mut conn = self.pool.get().await?;
            store::expired_open(&mut conn, BATCH).await?
        };
        let mut expired = 0;
        for payment in due {
            let span = tracing::info_span!("payment_expiry", service = crate::SERVICE, payment_id = %payment.id, order_id = %payment.order_id, trace_id = tracing::field::Empty);
            platform::trace::continue_trace(&span, payment.traceparent.as_deref());
            if self.expire(&payment).instrument(span).await? {
                expired += 1;
            }
        }
        Ok(expired)
    }

    async fn expire(&self, payment: &Payment) -> anyhow::Result<bool> {
        // Cancel at the provider first, so the customer cannot complete it afterwards; if it
        // completed at the last moment, that success is what we record.
        let last_word = match &payment.provider_ref {
            Some(reference) => match self.provider.cancel(reference, &format!("expire_{}", payment.id)).await
            {
                Ok(intent) if intent.status == IntentStatus::Succeeded => Some(intent),
                Ok(_) => None,
                Err(error) => {
                    tracing::warn!(%error, "cannot cancel the expired payment at the provider; failing it anyway");
                    None
                }
            },
            None => None,
        };
        let mut pooled = self.pool.get().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let expired = conn
            .transaction(async |conn: &mut AsyncPgConnection| match &last_word {
                Some(intent) => match store::lock(conn, payment.id).await? {
                    Some(locked) => {
                        lifecycle::apply_intent(conn, &locked, intent, "sweeper:late_success", &self.policy)
                            .await?;
                        Ok::<_, diesel::result::Error>(false)
                    }
                    None => Ok(false),
                },
                None => lifecycle::expire(conn, payment.id, &self.policy).await,
            })
            .await?;
        if expired {
            tracing::info!("payment expired after its grace period");
            metrics::counter!("payments_expired_total").increment(1);
        }
        Ok(expired)
    }
}
