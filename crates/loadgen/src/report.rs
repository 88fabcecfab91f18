//! Turns what was recorded into figures: throughput, latency percentiles and CPU per order,
//! printed for people and as a Markdown table ready to paste.

use crate::cpu::{Sample, Watched};
use crate::fire::Fired;
use crate::poll::Watched as Terminals;
use std::fmt::Write as _;
use std::time::Duration;

pub struct Run<'a> {
    pub label: &'a str,
    pub orders: usize,
    /// How the load was offered: "64 clients (closed loop)", "300/s for 60 s (open loop)".
    pub mode: String,
    /// The markdown table's clients column: "64" or "300/s open".
    pub clients: String,
    /// pgbench's tps for one stock UPDATE + one order INSERT per transaction, when measured.
    pub reference_tps: Option<f64>,
    pub poll_interval: Duration,
    pub fired: &'a Fired,
    pub terminals: &'a Terminals,
    pub pids: &'a [Watched],
    pub cpu_before: &'a Sample,
    pub cpu_after: &'a Sample,
    pub ticks_per_second: u64,
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Spread {
    p50: f64,
    p99: f64,
    max: f64,
}

fn spread(mut values: Vec<Duration>) -> Spread {
    values.sort_unstable();
    Spread {
        p50: ms(percentile(&values, 50.0)),
        p99: ms(percentile(&values, 99.0)),
        max: ms(values.last().copied().unwrap_or_default()),
    }
}

fn rate(count: usize, window: Duration) -> f64 {
    if window.is_zero() { 0.0 } else { count as f64 / window.as_secs_f64() }
}

pub fn render(run: &Run) -> String {
    let accepted = &run.fired.accepted;
    let first_accepted = accepted.iter().map(|a| a.accepted_at).min().unwrap_or_default();
    let last_accepted = accepted.iter().map(|a| a.accepted_at).max().unwrap_or_default();
    let accept_rate = rate(accepted.len(), last_accepted.saturating_sub(run.fired.first_sent));
    let accept = spread(accepted.iter().map(|a| a.latency).collect());

    let mut end_to_end = Vec::new();
    let mut last_confirmed = Duration::ZERO;
    let mut failed = 0;
    for order in accepted {
        match run.terminals.terminal.get(&order.id) {
            Some(t) if t.confirmed => {
                end_to_end.push(t.seen_at.saturating_sub(order.accepted_at));
                last_confirmed = last_confirmed.max(t.seen_at);
            }
            Some(_) => failed += 1,
            None => {}
        }
    }
    let confirmed = end_to_end.len();
    let confirm_rate = rate(confirmed, last_confirmed.saturating_sub(first_accepted));
    let e2e = spread(end_to_end);

    // CPU per order, by name (a name given twice adds up), then all watched processes.
    let per_order =
        |ticks: u64| ticks as f64 * 1000.0 / run.ticks_per_second as f64 / accepted.len().max(1) as f64;
    let mut names: Vec<(String, u64)> = Vec::new();
    for (i, watched) in run.pids.iter().enumerate() {
        let delta = run.cpu_after.processes[i].saturating_sub(run.cpu_before.processes[i]);
        match names.iter_mut().find(|(name, _)| *name == watched.name) {
            Some((_, ticks)) => *ticks += delta,
            None => names.push((watched.name.clone(), delta)),
        }
    }
    let services_total: u64 = names.iter().map(|(_, t)| t).sum();
    let machine = run.cpu_after.machine.saturating_sub(run.cpu_before.machine);
    let loadgen = run.cpu_after.loadgen.saturating_sub(run.cpu_before.loadgen);

    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "\n== loadgen: {} orders, {} ==", run.orders, run.mode);
    let _ = writeln!(
        w,
        "accepted            {} of {} ({} refused, {} unanswered)",
        accepted.len(),
        run.orders,
        run.fired.refused,
        run.fired.unanswered
    );
    if !run.fired.max_send_lag.is_zero() {
        let _ = writeln!(
            w,
            "send lag            max {:.1} ms behind the schedule (loadgen's own delay)",
            ms(run.fired.max_send_lag)
        );
    }
    if let Some(reason) = &run.fired.first_refusal {
        let _ = writeln!(w, "  first refusal     {}", truncate(reason, 300));
    }
    let _ = writeln!(w, "accepted/s          {accept_rate:.0}");
    let _ = writeln!(
        w,
        "accept latency ms   p50 {:.1}  p99 {:.1}  max {:.1}   (POST round trip)",
        accept.p50, accept.p99, accept.max
    );
    let _ = writeln!(
        w,
        "confirmed           {confirmed}   failed {failed}   not terminal by the deadline {}",
        run.terminals.unfinished
    );
    let _ = writeln!(
        w,
        "confirmed/s e2e     {confirm_rate:.0}   (confirmed / (last confirmed seen - first accepted))"
    );
    let _ = writeln!(w, "e2e latency ms      p50 {:.0}  p99 {:.0}  max {:.0}", e2e.p50, e2e.p99, e2e.max);
    let lost = run.orders.saturating_sub(confirmed + failed);
    let _ = writeln!(
        w,
        "lost                {lost}   (offered - confirmed - failed: refused, unanswered or not terminal)"
    );
    if let Some(tps) = run.reference_tps {
        let _ = writeln!(
            w,
            "confirmed/s ÷ pgbench tps  {:.3}   (pgbench: {tps:.0} tps, one stock UPDATE + one INSERT per transaction)",
            confirm_rate / tps.max(f64::MIN_POSITIVE)
        );
    }
    let _ = writeln!(
        w,
        "  note: e2e = first time the order was seen terminal - time it was accepted; the lists are polled every \
         {} ms, so each figure is an upper bound, late by up to {} ms plus one walk ({} walks, {} pages)",
        run.poll_interval.as_millis(),
        run.poll_interval.as_millis(),
        run.terminals.rounds,
        run.terminals.pages
    );
    let _ = writeln!(w, "CPU ms per order     (from before the first order until the services went idle)");
    for (name, ticks) in &names {
        let _ = writeln!(w, "  {name:<20}{:.2}", per_order(*ticks));
    }
    let _ = writeln!(w, "  {:<20}{:.2}", "services total", per_order(services_total));
    let _ = writeln!(w, "  {:<20}{:.2}", "loadgen", per_order(loadgen));
    let _ = writeln!(
        w,
        "  {:<20}{:.2}   (all processes: services, PostgreSQL, RabbitMQ, loadgen, rest)",
        "whole machine",
        per_order(machine)
    );

    let _ = writeln!(w, "\nMarkdown:\n");
    let mut header = String::from(
        "| run | orders | clients | accepted/s | accept p50 / p99 / max (ms) | confirmed/s | e2e p50 / p99 / max (ms) | failed |",
    );
    let mut rule = String::from("|---|---:|---:|---:|---|---:|---|---:|");
    let mut row = format!(
        "| {} | {} | {} | {accept_rate:.0} | {:.1} / {:.1} / {:.1} | {confirm_rate:.0} | {:.0} / {:.0} / {:.0} | {failed} |",
        run.label,
        accepted.len(),
        run.clients,
        accept.p50,
        accept.p99,
        accept.max,
        e2e.p50,
        e2e.p99,
        e2e.max
    );
    let mut cpu_header = String::from("| run |");
    let mut cpu_rule = String::from("|---|");
    let mut cpu_row = format!("| {} |", run.label);
    for (name, ticks) in
        names.iter().chain([("services".to_owned(), services_total), ("machine".to_owned(), machine)].iter())
    {
        let _ = write!(cpu_header, " {name} |");
        cpu_rule.push_str("---:|");
        let _ = write!(cpu_row, " {:.2} |", per_order(*ticks));
    }
    header.push('\n');
    rule.push('\n');
    row.push('\n');
    let _ = write!(w, "{header}{rule}{row}\nCPU ms per order:\n\n{cpu_header}\n{cpu_rule}\n{cpu_row}\n");
    out
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&values, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&values[..1], 99.0), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }
}
