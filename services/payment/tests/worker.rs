//! The worker against real PostgreSQL and the simulated provider: a crash between the
//! provider call and the commit charges once; a success that lands after the cancellation is
//! refunded.

#![expect(clippy::unwrap_used, reason = "a test should stop at the first unexpected value")]

use contracts::events::PaymentRequested;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use payment::lifecycle::{self, Policy};
use payment::provider::simulated::Simulated;
use payment::worker::{Faults, Worker};
use std::sync::Arc;
use std::time::Duration;
use testkit::{TestDatabase, eventually};
use uuid::Uuid;

/// A long wait on the provider, a short one on the customer.
fn policy() -> Policy {
    Policy { grace_ms: 60_000, action_ms: 1_000, recheck_ms: 60_000 }
}

struct Harness {
    db: TestDatabase,
    pool: platform::db::PgPool,
}

impl Harness {
    async fn start() -> Self {
        let db = TestDatabase::create().await.unwrap();
        let pool = platform::db::pool(&db.url_for("payment"), 4).unwrap();
        let sources = vec![messaging::MIGRATIONS, payment::startup::MIGRATIONS];
        platform::db::migrate(&pool, platform::db::lock_key("payment"), sources).await.unwrap();
        Self { db, pool }
    }

    fn worker(&self, faults: Faults) -> Worker {
        Worker {
            pool: self.pool.clone(),
            provider: Arc::new(Simulated { pool: self.pool.clone() }),
            policy: policy(),
            retry_delays: platform::retry::RetrySchedule::new(vec![Duration::from_millis(1); 3]),
            // A crashed worker's lease runs out almost at once.
            lease: Duration::from_millis(50),
            wake: Arc::default(),
            faults,
        }
    }

    async fn request(&self, method: &str) -> Uuid {
        let order_id = Uuid::now_v7();
        let request = PaymentRequested {
            order_id,
            amount: "42.00".parse().unwrap(),
            currency: "EUR".parse().unwrap(),
            payment_method: method.into(),
            customer_id: Some(Uuid::now_v7()),
        };
        let mut conn = self.pool.get().await.unwrap();
        assert!(lifecycle::request(&mut conn, &request, "simulated", "test").await.unwrap());
        assert!(
            !lifecycle::request(&mut conn, &request, "simulated", "test").await.unwrap(),
            "one payment per order"
        );
        order_id
    }

    async fn admin(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.db.admin_url()).await.unwrap()
    }

    async fn count(&self, sql: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        diesel::sql_query(sql).get_result::<Row>(&mut self.admin().await).await.unwrap().n
    }

    async fn status(&self, order_id: Uuid) -> String {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            t: String,
        }
        let sql = format!("SELECT status AS t FROM payment.payments WHERE order_id = '{order_id}'");
        diesel::sql_query(sql).get_result::<Row>(&mut self.admin().await).await.unwrap().t
    }

    /// Runs `worker` rounds until the payment reaches `status`.
    async fn work_until(&self, worker: &Worker, order_id: Uuid, status: &str) {
        eventually(&format!("the payment to be {status}"), Duration::from_secs(20), || async {
            worker.run_once().await;
            (self.status(order_id).await == status).then_some(())
        })
        .await;
    }

    async fn events(&self, event_type: &str) -> i64 {
        self.count(&format!("SELECT count(*) AS n FROM payment.outbox WHERE routing_key = '{event_type}'"))
            .await
    }
}

fn crashing_once() -> Faults {
    let faults = Faults::default();
    faults.crash_after_provider_call.store(1, std::sync::atomic::Ordering::SeqCst);
    faults
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_provider_call_and_the_commit_charges_once() {
    let harness = Harness::start().await;
    let order_id = harness.request("pm_card_ok").await;

    let faults = crashing_once();
    let doomed = harness.worker(faults.clone());
    assert_eq!(doomed.run_once().await, 1);
    assert_eq!(
        std::sync::atomic::AtomicUsize::load(
            &faults.crash_after_provider_call,
            std::sync::atomic::Ordering::SeqCst
        ),
        0,
        "the crash happened"
    );
    assert_eq!(harness.status(order_id).await, "processing", "the outcome was not committed");
    assert_eq!(
        harness.count("SELECT count(*) AS n FROM payment.sim_intents WHERE status = 'succeeded'").await,
        1
    );
    assert_eq!(harness.events("payment.succeeded").await, 0);

    let fresh = harness.worker(Faults::default());
    harness.work_until(&fresh, order_id, "succeeded").await;
    assert_eq!(
        harness.count("SELECT count(*) AS n FROM payment.sim_intents").await,
        1,
        "one charge at the provider"
    );
    assert_eq!(
        harness.count("SELECT confirm_calls::bigint AS n FROM payment.sim_intents").await,
        2,
        "the same call, twice"
    );
    assert_eq!(harness.events("payment.succeeded").await, 1);
    let keys = harness
        .count("SELECT count(DISTINCT idempotency_key) AS n FROM payment.payment_attempts WHERE operation = 'confirm'")
        .await;
    assert_eq!(keys, 1, "the retry used the same idempotency key");
    harness.db.drop_database().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_that_lands_after_the_cancellation_is_refunded_automatically() {
    let harness = Harness::start().await;
    let order_id = harness.request("pm_card_ok").await;
    // The provider charges, but the answer is lost with the worker...
    harness.worker(crashing_once()).run_once().await;
    // ... and meanwhile the order is cancelled.
    let mut conn = harness.pool.get().await.unwrap();
    lifecycle::cancel_order(&mut conn, contracts::OrderId(order_id), Uuid::now_v7()).await.unwrap();
    drop(conn);

    let fresh = harness.worker(Faults::default());
    harness.work_until(&fresh, order_id, "refunded").await;
    assert_eq!(harness.events("payment.succeeded").await, 1);
    assert_eq!(harness.events("payment.refunded").await, 1);
    assert_eq!(harness.events("payment.voided").await, 0);
    assert_eq!(harness.count("SELECT count(*) AS n FROM payment.sim_refunds").await, 1);
    assert_eq!(harness.count("SELECT count(*) AS n FROM payment.refunds WHERE amount = 42.00").await, 1);
    harness.db.drop_database().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_before_any_provider_call_voids_locally() {
    let harness = Harness::start().await;
    let order_id = harness.request("pm_card_ok").await;
    let mut conn = harness.pool.get().await.unwrap();
    lifecycle::cancel_order(&mut conn, contracts::OrderId(order_id), Uuid::now_v7()).await.unwrap();
    drop(conn);
    harness.work_until(&harness.worker(Faults::default()), order_id, "voided").await;
    assert_eq!(harness.count("SELECT count(*) AS n FROM payment.sim_intents").await, 0);
    assert_eq!(harness.events("payment.voided").await, 1);
    harness.db.drop_database().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_waiting_on_the_customer_lapses_after_the_action_timeout_not_the_grace_period() {
    let harness = Harness::start().await;
    let order_id = harness.request("pm_card_no_callback").await;
    let worker = harness.worker(Faults::default());
    harness.work_until(&worker, order_id, "requires_action").await;
    let deadline = format!(
        "SELECT count(*) AS n FROM payment.payments WHERE order_id = '{order_id}' \
         AND expires_at <= now() + interval '1 second' AND expires_at > now() - interval '30 seconds'"
    );
    assert_eq!(harness.count(&deadline).await, 1, "the customer's deadline is the action timeout");
    // Re-checks while the customer is away never push the deadline out.
    worker.run_once().await;
    assert_eq!(harness.count(&deadline).await, 1);

    let sweeper = payment::sweeper::Sweeper {
        pool: harness.pool.clone(),
        provider: worker.provider.clone(),
        policy: policy(),
        interval: Duration::from_millis(100),
    };
    eventually("the payment to lapse", Duration::from_secs(20), || async {
        sweeper.sweep_once().await.unwrap();
        (harness.status(order_id).await == "failed").then_some(())
    })
    .await;
    let timed_out = format!(
        "SELECT count(*) AS n FROM payment.payments WHERE order_id = '{order_id}' AND failure_code = 'payment_timeout'"
    );
    assert_eq!(harness.count(&timed_out).await, 1);
    assert_eq!(harness.events("payment.failed").await, 1);
    assert_eq!(
        harness.count("SELECT count(*) AS n FROM payment.sim_intents WHERE status = 'canceled'").await,
        1
    );
    harness.db.drop_database().await.unwrap();
}
