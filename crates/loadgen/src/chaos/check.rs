//! What must hold after the storm: the system's invariants (the shared check in
//! crates/invariants, the same one every system test and `make bench` end with), and what only
//! a retrying client can tell: it has exactly one order, the one its 201 named.

use super::clients::{Outcome, email};
use super::db::Database;
use anyhow::Context;
use std::collections::HashMap;
use std::time::Duration;

/// Waits (at most `settle`) until every invariant holds for every order; `Ok` carries the
/// check's one-line summary, `Err` what broke, per order.
pub async fn invariants(
    database: &Database,
    amqp_url: &str,
    management: &str,
    settle: Duration,
) -> anyhow::Result<String> {
    let target = invariants::Target::new(database.superuser_url(), amqp_url)
        .with_management(management, "guest", "guest");
    let report = invariants::verify(&target, &invariants::Expectations::new(), settle)
        .await
        .context("the invariant check")?;
    Ok(report.to_string())
}

/// Every client has exactly one order, and it is the one its answer named: a retry that took
/// over a key whose first request had in fact stored its order would show as a second order.
pub async fn one_order_per_client(database: &Database, outcomes: &[Outcome]) -> anyhow::Result<Vec<String>> {
    let rows = database
        .pairs(
            "SELECT customer_email AS a, id::text AS b FROM order_api.orders \
             WHERE customer_email LIKE 'chaos+%' ORDER BY id",
        )
        .await?;
    let mut by_email: HashMap<String, Vec<String>> = HashMap::new();
    for (address, id) in rows {
        by_email.entry(address.to_lowercase()).or_default().push(id);
    }
    let mut problems = Vec::new();
    for outcome in outcomes {
        let Some(answered) = outcome.id else { continue };
        let stored = by_email.remove(&email(outcome.index)).unwrap_or_default();
        match stored.as_slice() {
            [one] if *one == answered.to_string() => {}
            [] => problems.push(format!("client {}: its order {answered} is not stored", outcome.index)),
            _ => problems.push(format!(
                "client {} (one Idempotency-Key, {} attempts) answered {answered} but has {} orders: {}",
                outcome.index,
                outcome.attempts,
                stored.len(),
                stored.join(", ")
            )),
        }
    }
    Ok(problems)
}

/// Orders by status, for the report.
pub async fn statuses(database: &Database) -> anyhow::Result<Vec<(String, i64)>> {
    let rows = database
        .pairs(
            "SELECT status AS a, count(*)::text AS b FROM order_api.orders GROUP BY status ORDER BY status",
        )
        .await?;
    Ok(rows.into_iter().map(|(status, n)| (status, n.parse().unwrap_or(0))).collect())
}
