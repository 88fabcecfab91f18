//! The payment worker: leases due payments, talks to the provider with no transaction open,
//! then records the call, the outcome and its event in one transaction. Provider calls carry
//! idempotency keys derived from the payment and attempt (`pay_<id>_<attempt>`), so a worker
//! that dies between the call and the commit is harmless: the lease runs out, another worker
//! repeats the call with the same key and the provider answers what it did the first time.

use crate::domain::{Job, PaymentStatus, Trigger, job_of};
use crate::lifecycle::{self, Policy};
use crate::provider::{CreateIntent, Intent, Provider, ProviderError, RefundReceipt};
use crate::store::{self, Change, Payment, log};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use platform::db::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

const BATCH: i64 = 20;
const POLL: Duration = Duration::from_secs(1);

/// Fault injection for tests: while above zero, a worker returns right after a provider call
/// that would commit an outcome, without committing — what a crash there looks like.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub crash_after_provider_call: Arc<AtomicUsize>,
}

impl Faults {
    fn crash_now(&self) -> bool {
        self.crash_after_provider_call
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

#[derive(Clone)]
pub struct Worker {
    pub pool: PgPool,
    pub provider: Arc<dyn Provider>,
    pub policy: Policy,
    pub retry_delays: platform::retry::RetrySchedule,
    pub lease: Duration,
    pub wake: Arc<Notify>,
    pub faults: Faults,
}

#[derive(Debug, thiserror::Error)]
enum WorkError {
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error(transparent)]
    Pool(#[from] diesel_async::pooled_connection::deadpool::PoolError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error("simulated crash after the provider call")]
    Crash,
}

impl Worker {
    pub async fn run(self, cancel: CancellationToken) {
        tracing::info!(provider = self.provider.name(), "payment worker started");
        while !cancel.is_cancelled() {
            let handled = self.run_once().await;
            if handled as i64 == BATCH {
                continue;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
                _ = cancel.cancelled() => {}
            }
        }
        tracing::info!("payment worker stopped");
    }

    /// Claims the due payments and works on each; returns how many it claimed.
    pub async fn run_once(&self) -> usize {
        let claimed = match self.claim().await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(%error, "cannot claim payments; will retry");
                return 0;
            }
        };
        let count = claimed.len();
        futures_util::future::join_all(claimed.into_iter().map(|payment| self.work(payment))).await;
        count
    }

    async fn claim(&self) -> Result<Vec<Payment>, WorkError> {
        let mut conn = self.pool.get().await?;
        let lease = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
        Ok(store::claim_due(&mut conn, lease, BATCH).await?)
    }

    async fn work(&self, payment: Payment) {
        let span = tracing::info_span!("payment_work", service = crate::SERVICE, payment_id = %payment.id, order_id = %payment.order_id, trace_id = tracing::field::Empty);
        platform::trace::continue_trace(&span, payment.traceparent.as_deref());
        self.work_traced(payment).instrument(span).await;
    }

    async fn work_traced(&self, payment: Payment) {
        let job = job_of(&payment);
        let result = match job {
            Job::Charge => self.charge(&payment).await,
            Job::Recheck => self.recheck(&payment).await,
            Job::Void => self.void(&payment).await,
            Job::Refund => self.refund(&payment).await,
            Job::Nothing => self.commit(&payment, Step::Reschedule).await,
        };
        match result {
            Ok(()) => {}
            // The lease stays: another worker takes the payment up once it runs out.
            Err(WorkError::Crash) => tracing::warn!("simulated crash: the outcome was not recorded"),
            Err(WorkError::Provider(error)) => self.provider_failed(&payment, job, &error).await,
            Err(error) => {
                tracing::warn!(%error, ?job, "payment work failed; the lease will run out and it is retried")
            }
        }
    }

    fn request(&self, payment: &Payment) -> CreateIntent {
        CreateIntent {
            payment_id: payment.id,
            order_id: payment.order_id,
            amount: payment.amount.clone(),
            currency: payment.currency.clone(),
            payment_method: payment.payment_method.clone(),
            idempotency_key: payment.idempotency_key(),
        }
    }

    /// The provider's intent for this payment: created once per attempt (the key makes a
    /// repeat answer the same intent), its id stored before anything is charged.
    async fn intent_id(&self, payment: &Payment) -> Result<String, WorkError> {
        if let Some(reference) = &payment.provider_ref {
            return Ok(reference.clone());
        }
        let key = payment.idempotency_key();
        let intent = self.provider.create(&self.request(payment)).await?;
        self.commit(payment, Step::Created { key: &key, intent_id: &intent.id }).await?;
        Ok(intent.id)
    }

    async fn charge(&self, payment: &Payment) -> Result<(), WorkError> {
        if payment.state()? == PaymentStatus::Pending {
            self.commit(payment, Step::Submitted).await?;
        }
        let intent_id = self.intent_id(payment).await?;
        let key = format!("{}_confirm", payment.idempotency_key());
        let intent = self.provider.confirm(&intent_id, &key).await?;
        if self.faults.crash_now() {
            return Err(WorkError::Crash);
        }
        self.commit(
            payment,
            Step::Answered { operation: "confirm", key: Some(&key), intent: &intent, confirmed: true },
        )
        .await
    }

    async fn recheck(&self, payment: &Payment) -> Result<(), WorkError> {
        let intent_id = self.intent_id(payment).await?;
        let intent = self.provider.retrieve(&intent_id).await?;
        self.commit(
            payment,
            Step::Answered { operation: "retrieve", key: None, intent: &intent, confirmed: false },
        )
        .await
    }

    async fn void(&self, payment: &Payment) -> Result<(), WorkError> {
        if payment.state()? == PaymentStatus::Pending {
            // Nothing was ever sent to the provider: the void is ours alone.
            return self.commit(payment, Step::VoidedLocally).await;
        }
        let intent_id = self.intent_id(payment).await?;
        let key = format!("void_{}", payment.id);
        let intent = self.provider.cancel(&intent_id, &key).await?;
        self.commit(
            payment,
            Step::Answered { operation: "cancel", key: Some(&key), intent: &intent, confirmed: false },
        )
        .await
    }

    async fn refund(&self, payment: &Payment) -> Result<(), WorkError> {
        let intent_id = self.intent_id(payment).await?;
        let key = format!("refund_{}_1", payment.id);
        let remaining = &payment.amount - &payment.refunded_amount;
        let receipt = self.provider.refund(&intent_id, &remaining, &key).await?;
        if self.faults.crash_now() {
            return Err(WorkError::Crash);
        }
        self.commit(payment, Step::Refunded { key: &key, receipt: &receipt }).await
    }

    /// Applies `step` to the freshly locked row in one transaction.
    async fn commit(&self, payment: &Payment, step: Step<'_>) -> Result<(), WorkError> {
        let mut pooled = self.pool.get().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        conn.transaction(async |conn: &mut AsyncPgConnection| match store::lock(conn, payment.id).await? {
            Some(locked) => self.apply(conn, locked, &step).await,
            None => Ok(()),
        })
        .await?;
        Ok(())
    }

    async fn apply(
        &self,
        conn: &mut AsyncPgConnection,
        locked: Payment,
        step: &Step<'_>,
    ) -> diesel::QueryResult<()> {
        let id = locked.id;
        match step {
            Step::Reschedule => {}
            Step::Submitted => {
                lifecycle::move_to(conn, &locked, Trigger::Submitted, "worker").await?;
                return Ok(());
            }
            Step::Created { key, intent_id } => {
                log::attempt(conn, id, "create", Some(key), "created", None).await?;
                return store::change(conn, id, Change::ProviderRef(intent_id)).await;
            }
            Step::Answered { operation, key, intent, confirmed } => {
                log::attempt(conn, id, operation, *key, &format!("{:?}", intent.status), None).await?;
                if *confirmed {
                    store::change(conn, id, Change::Confirmed).await?;
                }
                let cause = format!("provider:{operation}");
                lifecycle::apply_intent(conn, &locked, intent, &cause, &self.policy).await?;
            }
            Step::VoidedLocally => {
                lifecycle::void(conn, &locked, "order_cancelled").await?;
            }
            Step::Refunded { key, receipt } => {
                log::attempt(conn, id, "refund", Some(key), "refunded", None).await?;
                lifecycle::refunded(conn, &locked, receipt, "order_cancelled").await?;
            }
            Step::Failed { job, error, retry_in_ms } => {
                log::attempt(conn, id, &format!("{job:?}").to_lowercase(), None, "error", Some(error))
                    .await?;
                if let Some(millis) = retry_in_ms {
                    let retries = locked.retries + 1;
                    return store::change(
                        conn,
                        id,
                        Change::Schedule { millis: *millis, retries, error: Some(error) },
                    )
                    .await;
                }
                match job {
                    Job::Charge => {
                        let reason =
                            ("provider_unavailable", None, "The payment provider could not be reached");
                        lifecycle::fail(conn, &locked, Trigger::ProviderFailed, reason, "worker:gave_up")
                            .await?;
                    }
                    // Re-checks resume at their interval; the grace period bounds them.
                    Job::Recheck => {
                        let millis = self.policy.recheck_ms;
                        return store::change(
                            conn,
                            id,
                            Change::Schedule { millis, retries: 0, error: Some(error) },
                        )
                        .await;
                    }
                    Job::Void | Job::Refund | Job::Nothing => {
                        tracing::error!(%error, ?job, "giving up; the payment needs an operator");
                        return store::change(conn, id, Change::Idle).await;
                    }
                }
            }
        }
        lifecycle::reschedule(conn, id, &self.policy).await
    }

    /// A transient error waits its turn in the backoff schedule (jitter only lengthens it);
    /// once the schedule is used up, or at once for a permanent error, a charge fails and other
    /// jobs stop and log.
    async fn provider_failed(&self, payment: &Payment, job: Job, error: &ProviderError) {
        // `retries` counts the failures before this one.
        let failures = u32::try_from(payment.retries).unwrap_or(0).saturating_add(1);
        let delay = match error {
            ProviderError::Transient(_) => self.retry_delays.jittered_delay_after(failures),
            ProviderError::Permanent(_) => None,
        };
        let retry_in_ms = delay.map(|delay| i64::try_from(delay.as_millis()).unwrap_or(i64::MAX).max(1));
        let text = error.to_string();
        tracing::warn!(error = %text, ?job, retries = payment.retries, will_retry = retry_in_ms.is_some(), "provider call failed");
        if let Err(error) = self.commit(payment, Step::Failed { job, error: &text, retry_in_ms }).await {
            tracing::warn!(%error, "cannot record the provider failure; the lease will run out");
        }
    }
}

/// What one transaction of the worker writes.
enum Step<'a> {
    Reschedule,
    Submitted,
    Created { key: &'a str, intent_id: &'a str },
    Answered { operation: &'a str, key: Option<&'a str>, intent: &'a Intent, confirmed: bool },
    VoidedLocally,
    Refunded { key: &'a str, receipt: &'a RefundReceipt },
    Failed { job: Job, error: &'a str, retry_in_ms: Option<i64> },
}
