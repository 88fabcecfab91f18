//! The runner against real PostgreSQL: rows of a table of its own, claimed by two runners side
//! by side, performed, and recorded in shared transactions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel::sql_types::{Array, BigInt, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use jobs::{Config, HookError, Hooks, Runner};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use testkit::{TestDatabase, eventually};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// Claims rows of `work`, "performs" each (counting), and records `recorded = recorded + 1`.
/// A row whose id is `poison` cannot be recorded.
struct Counter {
    performed: AtomicUsize,
    poison: Option<Uuid>,
    /// Performs wait for a permit when set (to hold jobs in flight).
    gate: Option<Arc<Semaphore>>,
}

impl Hooks for Counter {
    type Job = Uuid;
    type Done = Uuid;
    type Note = ();
    const NAME: &'static str = "test";

    async fn claim(
        &self,
        conn: &mut AsyncPgConnection,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Uuid>, HookError> {
        let rows: Vec<Row> = diesel::sql_query(
            "UPDATE work SET next_attempt_at = now() + $1 * interval '1 millisecond' \
             WHERE id IN (SELECT id FROM work WHERE recorded = 0 AND next_attempt_at <= now() \
                          ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING id",
        )
        .bind::<BigInt, _>(i64::try_from(lease.as_millis()).unwrap())
        .bind::<BigInt, _>(i64::try_from(limit).unwrap())
        .load(conn)
        .await?;
        Ok(rows.into_iter().map(|row| row.id).collect())
    }

    async fn perform(&self, id: Uuid) -> Option<Uuid> {
        if let Some(gate) = &self.gate {
            let _permit = gate.acquire().await.unwrap();
        }
        self.performed.fetch_add(1, Ordering::SeqCst);
        Some(id)
    }

    async fn record(&self, conn: &mut AsyncPgConnection, id: &Uuid) -> Result<(), HookError> {
        if Some(*id) == self.poison {
            return Err("this row cannot be recorded".into());
        }
        diesel::sql_query("UPDATE work SET recorded = recorded + 1 WHERE id = ANY($1)")
            .bind::<Array<SqlUuid>, _>(vec![*id])
            .execute(conn)
            .await?;
        Ok(())
    }

    fn lock_order(&self, id: &Uuid) -> (u128, u128) {
        (id.as_u128(), 0)
    }
}

fn counter(poison: Option<Uuid>, gate: Option<Arc<Semaphore>>) -> Arc<Counter> {
    Arc::new(Counter { performed: AtomicUsize::new(0), poison, gate })
}

fn config(batch: usize, concurrency: usize) -> Config {
    Config { batch, concurrency, lease: Duration::from_secs(60), poll: Duration::from_millis(100) }
}

async fn database(rows: usize) -> (TestDatabase, platform::db::PgPool, Vec<Uuid>) {
    let db = TestDatabase::create().await.unwrap();
    let pool = platform::db::pool(&db.admin_url(), 8).unwrap();
    let ids: Vec<Uuid> = (0..rows).map(|_| Uuid::now_v7()).collect();
    let values: Vec<String> = ids.iter().map(|id| format!("('{id}')")).collect();
    let mut conn = pool.get().await.unwrap();
    conn.batch_execute(&format!(
        "CREATE TABLE public.work (id uuid PRIMARY KEY, next_attempt_at timestamptz NOT NULL DEFAULT now(), \
                                   recorded int NOT NULL DEFAULT 0); \
         INSERT INTO public.work (id) VALUES {};",
        values.join(",")
    ))
    .await
    .unwrap();
    (db, pool, ids)
}

#[tokio::test(flavor = "multi_thread")]
async fn two_runners_record_every_job_once_and_share_transactions() {
    let (db, pool, _) = database(300).await;
    let cancel = CancellationToken::new();
    let hooks = [counter(None, None), counter(None, None)];
    let runs: Vec<_> = hooks
        .iter()
        .map(|h| {
            tokio::spawn(
                Runner::new(h.clone(), pool.clone(), config(16, 8), Arc::default()).run(cancel.clone()),
            )
        })
        .collect();
    eventually("every job recorded", Duration::from_secs(20), || async {
        (db.count("SELECT count(*) AS n FROM public.work WHERE recorded = 1").await.unwrap() == 300)
            .then_some(())
    })
    .await;
    cancel.cancel();
    for run in runs {
        run.await.unwrap();
    }
    assert_eq!(db.count("SELECT count(*) AS n FROM public.work WHERE recorded <> 1").await.unwrap(), 0);
    let performed: usize = hooks.iter().map(|h| AtomicUsize::load(&h.performed, Ordering::SeqCst)).sum();
    assert_eq!(performed, 300, "SKIP LOCKED and the lease: no job performed twice");
    // Each recorded row carries the id of the transaction that recorded it.
    let commits = db.count("SELECT count(DISTINCT xmin::text) AS n FROM public.work").await.unwrap();
    assert!(commits < 300, "outcomes ready together share one transaction: {commits} commits for 300 jobs");
    db.drop_database().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn one_outcome_that_cannot_be_recorded_does_not_hold_back_the_others() {
    let (db, pool, ids) = database(10).await;
    let hooks = counter(Some(ids[3]), None);
    assert_eq!(jobs::run_once(&*hooks, &pool, &config(10, 10)).await, 10);
    assert_eq!(db.count("SELECT count(*) AS n FROM public.work WHERE recorded = 1").await.unwrap(), 9);
    let poisoned = format!("SELECT recorded::bigint AS n FROM public.work WHERE id = '{}'", ids[3]);
    assert_eq!(db.count(&poisoned).await.unwrap(), 0, "left to its lease");
    db.drop_database().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn on_shutdown_jobs_in_flight_are_finished_and_recorded_and_nothing_more_is_claimed() {
    let (db, pool, _) = database(20).await;
    let gate = Arc::new(Semaphore::new(0));
    let hooks = counter(None, Some(gate.clone()));
    let cancel = CancellationToken::new();
    let run = tokio::spawn(
        Runner::new(hooks.clone(), pool, config(5, 5), Arc::new(Notify::new())).run(cancel.clone()),
    );
    let claimed =
        "SELECT count(*) AS n FROM public.work WHERE next_attempt_at > now() + interval '30 seconds'";
    eventually("five jobs claimed", Duration::from_secs(10), || async {
        (db.count(claimed).await.unwrap() == 5).then_some(())
    })
    .await;
    cancel.cancel();
    gate.add_permits(100);
    run.await.unwrap();
    assert_eq!(AtomicUsize::load(&hooks.performed, Ordering::SeqCst), 5);
    assert_eq!(db.count("SELECT count(*) AS n FROM public.work WHERE recorded = 1").await.unwrap(), 5);
    db.drop_database().await.unwrap();
}
