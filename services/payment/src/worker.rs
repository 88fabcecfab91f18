//! The payment worker's hooks for the shared job runner (`jobs`): due payments are claimed in
//! batches, each talks to the provider with no transaction open, and the calls, outcomes and
//! their events are recorded together in one transaction. Provider calls carry
//! idempotency keys derived from the payment and attempt (`pay_<id>_<attempt>`), so a worker
//! that dies between the call and the commit is harmless: the lease runs out, another worker
//! repeats the call with the same key and the provider answers what it did the first time.
//!
//! A charge commits `submitted` before the provider hears of it (so a cancellation knows to
//! void at the provider); the intent it creates is recorded with the provider's answer, in
//! the batch, not in a transaction of its own: a repeated create with the same key returns
//! the same intent.

use crate::domain::{Job, PaymentStatus, Trigger, job_of};
use crate::lifecycle::{self, Policy};
use crate::provider::{CreateIntent, Intent, IntentStatus, Provider, ProviderError, RefundReceipt};
use crate::store::log::{self, AttemptOutcome};
use crate::store::{self, Change, Payment};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use jobs::HookError;
use platform::db::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tracing::Instrument;

/// What [`Worker::run_once`] claims and performs at once.
const ONCE_BATCH: usize = 20;

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

/// A payment worked on, and the transaction that records it.
pub struct Worked {
    payment: Payment,
    step: Step,
}

impl jobs::Hooks for Worker {
    type Job = Payment;
    type Done = Worked;
    type Note = ();
    const NAME: &'static str = "payment";

    async fn claim(
        &self,
        conn: &mut AsyncPgConnection,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Payment>, HookError> {
        let lease = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        Ok(store::claim_due(conn, lease, i64::try_from(limit).unwrap_or(i64::MAX)).await?)
    }

    async fn perform(&self, payment: Payment) -> Option<Worked> {
        let span = tracing::info_span!("payment_work", service = crate::SERVICE, payment_id = %payment.id, order_id = %payment.order_id, trace_id = tracing::field::Empty);
        platform::trace::continue_trace(&span, payment.traceparent.as_deref());
        let step = self.work(&payment).instrument(span).await?;
        Some(Worked { payment, step })
    }

    /// Applies the step to the freshly locked row.
    async fn record(&self, conn: &mut AsyncPgConnection, worked: &Worked) -> Result<(), HookError> {
        if let Some(locked) = store::lock(conn, worked.payment.id).await? {
            self.apply(conn, locked, &worked.step).await?;
        }
        Ok(())
    }

    /// `payment.succeeded` / `payment.failed` continue the order's trace.
    fn span(&self, worked: &Worked) -> tracing::Span {
        let payment = &worked.payment;
        let span = tracing::info_span!("payment_record", service = crate::SERVICE, payment_id = %payment.id, order_id = %payment.order_id, trace_id = tracing::field::Empty);
        platform::trace::continue_trace(&span, payment.traceparent.as_deref());
        span
    }

    fn lock_order(&self, worked: &Worked) -> (u128, u128) {
        (worked.payment.id.as_uuid().as_u128(), 0)
    }
}

impl Worker {
    /// The runner for this worker, claiming and performing as `config` says.
    pub fn runner(self, config: jobs::Config) -> jobs::Runner<Self> {
        let (pool, wake) = (self.pool.clone(), self.wake.clone());
        jobs::Runner::new(Arc::new(self), pool, config, wake)
    }

    /// One round (claim, work, record); returns how many payments it claimed.
    pub async fn run_once(&self) -> usize {
        let config = jobs::Config {
            batch: ONCE_BATCH,
            concurrency: ONCE_BATCH,
            lease: self.lease,
            poll: jobs::DEFAULT_POLL,
        };
        jobs::run_once(self, &self.pool, &config).await
    }

    /// The provider calls for `payment`'s job, and the step that records their outcome;
    /// `None` when nothing is to be recorded (the lease runs out and it is tried again).
    async fn work(&self, payment: &Payment) -> Option<Step> {
        let job = job_of(payment.standing());
        let result = match job {
            Job::Charge => self.charge(payment).await,
            Job::Recheck => self.recheck(payment).await,
            Job::Void => self.void(payment).await,
            Job::Refund => self.refund(payment).await,
            Job::Nothing => Ok(Step::Reschedule),
        };
        match result {
            Ok(step) => Some(step),
            // The lease stays: another worker takes the payment up once it runs out.
            Err(WorkError::Crash) => {
                tracing::warn!("simulated crash: the outcome was not recorded");
                None
            }
            Err(WorkError::Provider(error)) => Some(self.provider_failed(payment, job, &error)),
            Err(error) => {
                tracing::warn!(%error, ?job, "payment work failed; the lease will run out and it is retried");
                None
            }
        }
    }

    fn request(&self, payment: &Payment) -> CreateIntent {
        CreateIntent {
            payment_id: payment.id.into(),
            order_id: payment.order_id.into(),
            amount: payment.amount.clone(),
            currency: payment.currency.clone(),
            payment_method: payment.payment_method.clone(),
            idempotency_key: payment.idempotency_key(),
        }
    }

    /// The provider's intent for this payment: created once per attempt (the key makes a
    /// repeat answer the same intent). A new one comes back as `Created`, to be recorded with
    /// whatever is recorded next.
    async fn intent_id(&self, payment: &Payment) -> Result<(String, Option<Created>), WorkError> {
        if let Some(reference) = &payment.provider_ref {
            return Ok((reference.clone(), None));
        }
        let key = payment.idempotency_key();
        let intent = self.provider.create(&self.request(payment)).await?;
        Ok((intent.id.clone(), Some(Created { key, intent_id: intent.id })))
    }

    async fn charge(&self, payment: &Payment) -> Result<Step, WorkError> {
        if payment.status == PaymentStatus::Pending {
            self.commit(payment, Step::Submitted).await?;
        }
        let (intent_id, created) = self.intent_id(payment).await?;
        let key = format!("{}_confirm", payment.idempotency_key());
        let intent = self.provider.confirm(&intent_id, &key).await?;
        if self.faults.crash_now() {
            return Err(WorkError::Crash);
        }
        Ok(Step::Answered { created, operation: "confirm", key: Some(key), intent, confirmed: true })
    }

    async fn recheck(&self, payment: &Payment) -> Result<Step, WorkError> {
        let (intent_id, created) = self.intent_id(payment).await?;
        let intent = self.provider.retrieve(&intent_id).await?;
        Ok(Step::Answered { created, operation: "retrieve", key: None, intent, confirmed: false })
    }

    async fn void(&self, payment: &Payment) -> Result<Step, WorkError> {
        if payment.status == PaymentStatus::Pending {
            // Nothing was ever sent to the provider: the void is ours alone.
            return Ok(Step::VoidedLocally);
        }
        let (intent_id, created) = self.intent_id(payment).await?;
        let key = format!("void_{}", payment.id);
        let intent = self.provider.cancel(&intent_id, &key).await?;
        Ok(Step::Answered { created, operation: "cancel", key: Some(key), intent, confirmed: false })
    }

    async fn refund(&self, payment: &Payment) -> Result<Step, WorkError> {
        let (intent_id, created) = self.intent_id(payment).await?;
        if let Some(created) = created {
            // Rare (a paid payment always has its intent stored); recorded before money moves.
            self.commit(payment, Step::Created(created)).await?;
        }
        let key = format!("refund_{}_1", payment.id);
        let remaining = &payment.amount - &payment.refunded_amount;
        let receipt = self.provider.refund(&intent_id, &remaining, &key).await?;
        if self.faults.crash_now() {
            return Err(WorkError::Crash);
        }
        Ok(Step::Refunded { key, receipt })
    }

    /// Applies `step` to the freshly locked row in a transaction of its own, before the
    /// provider is called again.
    async fn commit(&self, payment: &Payment, step: Step) -> Result<(), WorkError> {
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
        step: &Step,
    ) -> diesel::QueryResult<()> {
        let id = locked.id;
        match step {
            Step::Reschedule => {}
            Step::Submitted => {
                lifecycle::move_to(conn, &locked, Trigger::Submitted, "worker").await?;
                return Ok(());
            }
            Step::Created(created) => {
                return record_created(conn, id, created).await;
            }
            Step::Answered { created, operation, key, intent, confirmed } => {
                if let Some(created) = created {
                    record_created(conn, id, created).await?;
                }
                // A decline keeps its code with the attempt: the outcome alone does not say why.
                let declined = match &intent.status {
                    IntentStatus::Failed { code, .. } => Some(code.as_str()),
                    _ => None,
                };
                let outcome = AttemptOutcome::from(&intent.status);
                log::attempt(conn, id, operation, key.as_deref(), outcome, declined).await?;
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
                log::attempt(conn, id, "refund", Some(key.as_str()), AttemptOutcome::Refunded, None).await?;
                lifecycle::refunded(conn, &locked, receipt, "order_cancelled").await?;
            }
            Step::Failed { job, error, retry_in_ms } => {
                let operation = format!("{job:?}").to_lowercase();
                log::attempt(conn, id, &operation, None, AttemptOutcome::Error, Some(error)).await?;
                if let Some(millis) = retry_in_ms {
                    let retries = locked.retries + 1;
                    return store::change(
                        conn,
                        id,
                        Change::Schedule { millis: *millis, retries, error: Some(error.as_str()) },
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
                            Change::Schedule { millis, retries: 0, error: Some(error.as_str()) },
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
    fn provider_failed(&self, payment: &Payment, job: Job, error: &ProviderError) -> Step {
        // `retries` counts the failures before this one.
        let failures = u32::try_from(payment.retries).unwrap_or(0).saturating_add(1);
        let delay = match error {
            ProviderError::Transient(_) => self.retry_delays.jittered_delay_after(failures),
            ProviderError::Permanent(_) => None,
        };
        let retry_in_ms = delay.map(|delay| i64::try_from(delay.as_millis()).unwrap_or(i64::MAX).max(1));
        let error = error.to_string();
        tracing::warn!(%error, ?job, retries = payment.retries, will_retry = retry_in_ms.is_some(), "provider call failed");
        Step::Failed { job, error, retry_in_ms }
    }
}

async fn record_created(
    conn: &mut AsyncPgConnection,
    id: contracts::PaymentId,
    created: &Created,
) -> diesel::QueryResult<()> {
    log::attempt(conn, id, "create", Some(created.key.as_str()), AttemptOutcome::Created, None).await?;
    store::change(conn, id, Change::ProviderRef(&created.intent_id)).await
}

/// An intent created at the provider: its idempotency key and id.
struct Created {
    key: String,
    intent_id: String,
}

/// What one transaction of the worker writes.
enum Step {
    Reschedule,
    Submitted,
    Created(Created),
    Answered {
        created: Option<Created>,
        operation: &'static str,
        key: Option<String>,
        intent: Intent,
        confirmed: bool,
    },
    VoidedLocally,
    Refunded {
        key: String,
        receipt: RefundReceipt,
    },
    Failed {
        job: Job,
        error: String,
        retry_in_ms: Option<i64>,
    },
}
