//! Gauges an operator asks about first: how many orders are in each status, and how many sit
//! in `pending` or `processing` for longer than they should (the saga is stuck somewhere).
//! One `GROUP BY` every 15 s; the per-transition histogram is recorded by `store`.

use crate::domain::status::OrderStatus;
use crate::store::orders;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use platform::db::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const INTERVAL: Duration = Duration::from_secs(15);
/// An order in flight for longer than this counts as stuck.
const STUCK_AFTER_MINUTES: i64 = 15;

/// Sets `orders_by_status{status}` and `orders_stuck` every [`INTERVAL`] until `cancel`.
pub async fn report(pool: PgPool, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => return,
        }
        if let Err(error) = report_once(&pool).await {
            tracing::debug!(%error, "cannot count orders by status");
        }
    }
}

async fn report_once(pool: &PgPool) -> anyhow::Result<()> {
    let mut conn = pool.get().await?;
    let counts: Vec<(String, i64)> = orders::table
        .group_by(orders::status)
        .select((orders::status, diesel::dsl::count_star()))
        .load(&mut conn)
        .await?;
    for &status in <OrderStatus as strum::VariantArray>::VARIANTS {
        let n = counts.iter().find(|(s, _)| s == status.as_str()).map_or(0, |(_, n)| *n);
        metrics::gauge!("orders_by_status", "status" => status.as_str()).set(n as f64);
    }
    let cutoff = chrono::Utc::now() - chrono::Duration::minutes(STUCK_AFTER_MINUTES);
    let in_flight = [OrderStatus::Pending, OrderStatus::Processing];
    let stuck: i64 = orders::table
        .filter(orders::status.eq_any(in_flight))
        .filter(orders::updated_at.lt(cutoff))
        .count()
        .get_result(&mut conn)
        .await?;
    metrics::gauge!("orders_stuck").set(stuck as f64);
    Ok(())
}
