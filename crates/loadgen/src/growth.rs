//! Cost growth within one run: CPU per confirmed order while the 10th–45th percent of the
//! orders were confirmed, against the 55th–90th percent. Flat cost stays within a few percent;
//! a table or queue that grows with every order shows as a rise. (The other check, CPU
//! per order at 10,000 against 100,000 orders, compares two runs' reports.)

use crate::progress::Tick;
use std::time::Duration;

#[derive(Debug, PartialEq)]
pub struct Part {
    pub from: Duration,
    pub to: Duration,
    pub orders: usize,
    /// CPU ms per order of the whole machine and of the watched processes.
    pub machine_ms: f64,
    pub watched_ms: f64,
}

/// `confirmed`: when each order was seen confirmed, sorted. `None` when the run is too short
/// for a part to span two CPU readings a second apart.
pub fn part(
    confirmed: &[Duration],
    ticks: &[Tick],
    from: f64,
    to: f64,
    ticks_per_second: u64,
) -> Option<Part> {
    let (first, last) = ((confirmed.len() as f64 * from) as usize, (confirmed.len() as f64 * to) as usize);
    let (first, last) =
        (*confirmed.get(first)?, *confirmed.get(last.min(confirmed.len().saturating_sub(1)))?);
    let start = ticks.iter().find(|t| t.at >= first)?;
    let end = ticks.iter().find(|t| t.at >= last)?;
    let orders = confirmed.iter().filter(|c| **c > start.at && **c <= end.at).count();
    if end.at <= start.at || orders == 0 {
        return None;
    }
    let ms = |ticks: u64| ticks as f64 * 1000.0 / ticks_per_second as f64 / orders as f64;
    Some(Part {
        from: start.at,
        to: end.at,
        orders,
        machine_ms: ms(end.sample.machine.saturating_sub(start.sample.machine)),
        watched_ms: ms(crate::cpu::busy_ticks(&start.sample, &end.sample)),
    })
}

pub fn render(confirmed: &[Duration], ticks: &[Tick], ticks_per_second: u64) -> String {
    let early = part(confirmed, ticks, 0.10, 0.45, ticks_per_second);
    let late = part(confirmed, ticks, 0.55, 0.90, ticks_per_second);
    let (Some(early), Some(late)) = (early, late) else {
        return "cost growth         n/a (the run is too short for two parts of a second or more)".into();
    };
    let describe = |p: &Part| {
        format!(
            "{:.2} machine / {:.2} watched ms per order ({} orders, {:.0}–{:.0} s)",
            p.machine_ms,
            p.watched_ms,
            p.orders,
            p.from.as_secs_f64(),
            p.to.as_secs_f64()
        )
    };
    format!(
        "cost growth         orders 10–45 %: {}\n                    orders 55–90 %: {}\n                    \
         machine CPU per order {:+.1} % from the first part to the last",
        describe(&early),
        describe(&late),
        (late.machine_ms / early.machine_ms - 1.0) * 100.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::Sample;

    fn tick(second: u64, machine: u64) -> Tick {
        Tick {
            at: Duration::from_secs(second),
            sample: Sample { processes: vec![machine / 2], loadgen: 0, machine },
        }
    }

    #[test]
    fn a_cost_that_doubles_shows_as_plus_one_hundred_percent() {
        // 100 orders confirmed evenly over 10 s; the machine spends 100 ticks a second in the
        // first five seconds and 200 in the last five.
        let confirmed: Vec<Duration> = (1..=100).map(|i| Duration::from_millis(i * 100)).collect();
        let mut machine = 0;
        let ticks: Vec<Tick> = (0..=10)
            .map(|s| {
                if s > 0 {
                    machine += if s <= 5 { 100 } else { 200 };
                }
                tick(s, machine)
            })
            .collect();
        let early = part(&confirmed, &ticks, 0.10, 0.45, 100).unwrap_or_else(|| panic!("no early part"));
        let late = part(&confirmed, &ticks, 0.55, 0.90, 100).unwrap_or_else(|| panic!("no late part"));
        assert_eq!(
            (early.from, early.to, early.orders),
            (Duration::from_secs(2), Duration::from_secs(5), 30)
        );
        assert!((early.machine_ms - 100.0).abs() < 1e-9, "{early:?}");
        assert!((late.machine_ms - 200.0).abs() < 1e-9, "{late:?}");
        assert!(render(&confirmed, &ticks, 100).contains("+100.0 %"));
    }

    #[test]
    fn a_run_without_readings_says_so() {
        let confirmed = [Duration::from_millis(10)];
        assert!(render(&confirmed, &[], 100).contains("n/a"));
    }
}
