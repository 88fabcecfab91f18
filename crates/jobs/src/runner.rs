//! The claim / perform / record loop (see the crate documentation).

use crate::{Config, HookError, Hooks};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures_util::StreamExt;
use platform::db::PgPool;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub struct Runner<H: Hooks> {
    hooks: Arc<H>,
    pool: PgPool,
    config: Config,
    wake: Arc<Notify>,
}

impl<H: Hooks> Runner<H> {
    /// `wake` is rung (`notify_one`, which keeps a permit while the runner is busy, so no
    /// wake-up is lost) by whoever commits new work.
    pub fn new(hooks: Arc<H>, pool: PgPool, config: Config, wake: Arc<Notify>) -> Self {
        Self { hooks, pool, config, wake }
    }

    /// Runs until `cancel`; jobs in flight then are finished and recorded first.
    ///
    /// Claims happen whenever slots are free and work may be due (a wake-up, the poll, or a
    /// claim that came back full); outcomes are recorded as they come in, all those ready
    /// at once in one transaction, so a slow job holds up nobody else's record.
    pub async fn run(self, cancel: CancellationToken) {
        tracing::info!(
            worker = H::NAME,
            batch = self.config.batch,
            concurrency = self.config.concurrency,
            "job runner started"
        );
        let mut in_flight: JoinSet<Option<H::Done>> = JoinSet::new();
        let mut due = true;
        let mut next_poll = Instant::now() + self.config.poll;
        loop {
            let stopping = cancel.is_cancelled();
            if stopping && in_flight.is_empty() {
                break;
            }
            let free = self.config.concurrency.saturating_sub(in_flight.len());
            if !stopping && due && free > 0 {
                let limit = free.min(self.config.batch);
                let claimed = claim(&*self.hooks, &self.pool, &self.config, limit).await;
                // A full claim: more may be due right now, and waiting would only add latency.
                due = claimed.len() == limit;
                next_poll = Instant::now() + self.config.poll;
                for job in claimed {
                    let hooks = self.hooks.clone();
                    in_flight.spawn(async move { hooks.perform(job).await });
                }
            }
            let mut finished = Vec::new();
            while let Some(joined) = in_flight.try_join_next() {
                collect::<H>(joined, &mut finished);
            }
            let may_claim = !stopping && due && in_flight.len() < self.config.concurrency;
            if finished.is_empty() && !may_claim {
                tokio::select! {
                    Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                        collect::<H>(joined, &mut finished);
                        while let Some(joined) = in_flight.try_join_next() {
                            collect::<H>(joined, &mut finished);
                        }
                    }
                    () = self.wake.notified(), if !stopping => due = true,
                    () = tokio::time::sleep_until(next_poll), if !stopping => due = true,
                    () = cancel.cancelled(), if !stopping => {}
                }
            }
            record(&*self.hooks, &self.pool, finished).await;
        }
        tracing::info!(worker = H::NAME, "job runner stopped");
    }
}

/// One round: claims up to `batch` due rows, performs them (`concurrency` at once), records
/// the outcomes in one transaction, and returns how many it claimed. For tests and commands
/// that want one deterministic step instead of a running loop.
pub async fn run_once<H: Hooks>(hooks: &H, pool: &PgPool, config: &Config) -> usize {
    let claimed = claim(hooks, pool, config, config.batch).await;
    let count = claimed.len();
    let finished: Vec<H::Done> = futures_util::stream::iter(claimed)
        .map(|job| hooks.perform(job))
        .buffer_unordered(config.concurrency)
        .filter_map(std::future::ready)
        .collect()
        .await;
    record(hooks, pool, finished).await;
    count
}

fn collect<H: Hooks>(joined: Result<Option<H::Done>, JoinError>, finished: &mut Vec<H::Done>) {
    match joined {
        Ok(Some(done)) => finished.push(done),
        Ok(None) => {}
        // A bug in the hook; the row's lease runs out and it is tried again.
        Err(error) => tracing::error!(worker = H::NAME, %error, "a job panicked; its lease will run out"),
    }
}

async fn claim<H: Hooks>(hooks: &H, pool: &PgPool, config: &Config, limit: usize) -> Vec<H::Job> {
    let claimed = async {
        let mut conn = pool.get().await?;
        hooks.claim(&mut conn, limit, config.lease).await
    };
    match claimed.await {
        Ok(jobs) => jobs,
        Err(error) => {
            tracing::warn!(worker = H::NAME, %error, "cannot claim due jobs; will retry");
            Vec::new()
        }
    }
}

/// Records `finished` in one transaction; if that fails, each on its own, so only the one
/// that cannot be recorded waits for its lease.
async fn record<H: Hooks>(hooks: &H, pool: &PgPool, mut finished: Vec<H::Done>) {
    if finished.is_empty() {
        return;
    }
    finished.sort_by_cached_key(|done| hooks.lock_order(done));
    let error = match record_together(hooks, pool, &finished).await {
        Ok(notes) => {
            finished.into_iter().zip(notes).for_each(|(done, note)| hooks.recorded(done, note));
            return;
        }
        Err(error) => error,
    };
    if finished.len() > 1 {
        tracing::warn!(worker = H::NAME, %error, jobs = finished.len(), "cannot record the batch; recording each on its own");
    }
    for done in finished {
        match record_together(hooks, pool, std::slice::from_ref(&done)).await {
            Ok(mut notes) => {
                if let Some(note) = notes.pop() {
                    hooks.recorded(done, note);
                }
            }
            Err(error) => {
                tracing::warn!(worker = H::NAME, %error, "cannot record a job's outcome; its lease will run out and it is repeated")
            }
        }
    }
}

async fn record_together<H: Hooks>(
    hooks: &H,
    pool: &PgPool,
    finished: &[H::Done],
) -> Result<Vec<H::Note>, HookError> {
    let mut pooled = pool.get().await?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    conn.transaction(async |conn: &mut AsyncPgConnection| {
        let mut notes = Vec::with_capacity(finished.len());
        for done in finished {
            notes.push(hooks.record(conn, done).instrument(hooks.span(done)).await?);
        }
        Ok::<_, HookError>(notes)
    })
    .await
}
