//! Judging one look at the system, and saying what broke: queue by queue, outbox by outbox,
//! order by order.

use crate::Expectations;
use crate::broker::QueueState;
use crate::database::{DatabaseState, OrderRow, ProductRow};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// A dead letter as the report shows it.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The routing key it was published with (before it was dead-lettered).
    pub routing_key: String,
    pub event_type: Option<String>,
    pub reason: Option<String>,
}

/// An order that breaks an invariant, with everything the services know of it.
#[derive(Debug, Clone)]
pub struct OrderState {
    pub row: OrderRow,
    pub problems: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Report {
    /// Every broken invariant that is not about one order.
    pub problems: Vec<String>,
    pub orders: Vec<OrderState>,
    /// Dead letters by queue (only read when a dead-letter queue holds what it should not).
    pub dead_letters: BTreeMap<String, Vec<DeadLetter>>,
    /// Orders seen, by status.
    pub statuses: BTreeMap<String, usize>,
    pub queues_seen: usize,
    pub outboxes_seen: usize,
    /// How long the check waited for the system to settle.
    pub waited: Duration,
    /// The exceptions the caller declared (filled in when it fails).
    pub expected: Vec<String>,
}

impl Report {
    pub fn holds(&self) -> bool {
        self.problems.is_empty() && self.orders.is_empty()
    }
}

const SUCCEEDED: &[&str] = &["confirmed", "shipped", "delivered"];
const UNSUCCESSFUL: &[&str] = &["failed", "cancelled"];
const OPEN_PAYMENT: &[&str] = &["pending", "processing", "requires_action"];

fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.unsigned_abs() / 100, cents.unsigned_abs() % 100)
}

pub fn judge(database: DatabaseState, queues: Vec<QueueState>, expected: &Expectations) -> Report {
    let mut report =
        Report { queues_seen: queues.len(), outboxes_seen: database.outboxes.len(), ..Report::default() };
    let seen: Vec<String> = queues.iter().map(|q| q.name.clone()).collect();
    for (queue, count) in &expected.dead_letters {
        if !seen.contains(queue) && *count > 0 {
            report.problems.push(format!("expected {count} dead letter(s) in {queue}, which does not exist"));
        }
    }
    for queue in queues {
        if queue.is_dead_letter_queue() {
            let want = expected.dead_letters.get(&queue.name).copied().unwrap_or(0);
            if queue.messages != want {
                report.problems.push(format!(
                    "dead-letter queue {} holds {} message(s), expected {want}",
                    queue.name, queue.messages
                ));
                if !queue.dead_letters.is_empty() {
                    report.dead_letters.insert(queue.name, queue.dead_letters);
                }
            }
        } else if queue.messages > 0 && !expected.queued.contains_key(&queue.name) {
            report
                .problems
                .push(format!("queue {} still holds {} unconsumed message(s)", queue.name, queue.messages));
        }
    }
    for (schema, waiting) in database.outboxes {
        if waiting > 0 {
            report
                .problems
                .push(format!("outbox {schema}.outbox still holds {waiting} unpublished event(s)"));
        }
    }
    for ProductRow { id, sku, reserved, open_reservations } in database.products {
        report.problems.push(format!(
            "product {sku} ({id}) counts {reserved} reserved, but its open reservations add up to {open_reservations}"
        ));
    }
    for row in database.orders {
        *report.statuses.entry(row.status.clone()).or_default() += 1;
        let problems = judge_order(&row, expected);
        if !problems.is_empty() {
            report.orders.push(OrderState { row, problems });
        }
    }
    report
}

fn judge_order(row: &OrderRow, expected: &Expectations) -> Vec<String> {
    let mut problems = Vec::new();
    let id = row.id.parse().unwrap_or_default();
    let status = row.status.as_str();
    let succeeded = SUCCEEDED.contains(&status);
    let unsuccessful = UNSUCCESSFUL.contains(&status);
    if !succeeded && !unsuccessful {
        if !expected.open_orders.contains_key(&id) {
            problems.push(format!("left `{status}` (not terminal)"));
        }
        // An open order's stock and money are still moving.
        return problems;
    }
    // Stock: everything reserved was committed or released.
    if row.reserved > 0 {
        problems.push(format!("stock: {} unit(s) still reserved", row.reserved));
    }
    if succeeded && row.committed != row.ordered {
        problems.push(format!("stock: committed {} of {} ordered unit(s)", row.committed, row.ordered));
    }
    if unsuccessful && row.committed > 0 {
        problems.push(format!("stock: {} unit(s) committed for a {status} order", row.committed));
    }
    // Money: captured minus refunded is what the customer paid for.
    if !expected.unbalanced_payments.contains_key(&id) {
        let net = row.captured_cents - row.refunded_cents;
        let owed = if succeeded { row.total_cents } else { 0 };
        if net != owed {
            problems.push(format!(
                "money: captured {} - refunded {} = {} {}, expected {} for a {status} order",
                money(row.captured_cents),
                money(row.refunded_cents),
                money(net),
                row.currency,
                money(owed)
            ));
        }
        if let Some(payment) = row.payment_status.as_deref().filter(|p| OPEN_PAYMENT.contains(p)) {
            problems.push(format!("money: payment still `{payment}` on a {status} order"));
        }
        if row.refund_rows_cents != row.refunded_cents {
            problems.push(format!(
                "money: refunds recorded add up to {}, the payment says {} refunded",
                money(row.refund_rows_cents),
                money(row.refunded_cents)
            ));
        }
    }
    // Invoices: one per order that was ever confirmed, none otherwise.
    let invoices_owed = i64::from(row.ever_confirmed);
    if row.invoices != invoices_owed {
        problems.push(format!("invoices: {} sent, expected {invoices_owed}", row.invoices));
    }
    problems
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let orders: usize = self.statuses.values().sum();
        let statuses: Vec<String> = self.statuses.iter().map(|(s, n)| format!("{n} {s}")).collect();
        let seen = format!(
            "{orders} order(s) ({}), {} queue(s), {} outbox(es)",
            if statuses.is_empty() { "none".into() } else { statuses.join(", ") },
            self.queues_seen,
            self.outboxes_seen
        );
        if self.holds() {
            return write!(f, "invariants hold after {:.1} s: {seen}", self.waited.as_secs_f64());
        }
        writeln!(f, "invariants broken (still, after waiting {:.1} s): {seen}", self.waited.as_secs_f64())?;
        if !self.expected.is_empty() {
            writeln!(f, "declared exceptions:")?;
            for line in &self.expected {
                writeln!(f, "  - {line}")?;
            }
        }
        for problem in &self.problems {
            writeln!(f, "- {problem}")?;
        }
        for (queue, letters) in &self.dead_letters {
            let mut by_key: BTreeMap<(String, String), usize> = BTreeMap::new();
            for letter in letters {
                let reason = letter.reason.clone().unwrap_or_else(|| "no reason recorded".into());
                *by_key.entry((letter.routing_key.clone(), reason)).or_default() += 1;
            }
            writeln!(f, "  {queue} holds (routing key × count: reason):")?;
            for ((key, reason), count) in by_key {
                writeln!(f, "    {key} × {count}: {reason}")?;
            }
        }
        if !self.orders.is_empty() {
            writeln!(f, "{} order(s) break an invariant:", self.orders.len())?;
        }
        for OrderState { row, problems } in &self.orders {
            writeln!(
                f,
                "  order {} `{}` total {} {}: ordered {}, reserved {}, committed {}, released {}, returned {}; \
                 payment {} captured {} refunded {}; invoices {}",
                row.id,
                row.status,
                money(row.total_cents),
                row.currency,
                row.ordered,
                row.reserved,
                row.committed,
                row.released,
                row.returned,
                row.payment_status.as_deref().unwrap_or("none"),
                money(row.captured_cents),
                money(row.refunded_cents),
                row.invoices
            )?;
            for problem in problems {
                writeln!(f, "    - {problem}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::money;

    #[test]
    fn money_prints_cents_with_two_decimals() {
        assert_eq!(money(1050), "10.50");
        assert_eq!(money(5), "0.05");
        assert_eq!(money(-250), "-2.50");
    }
}
