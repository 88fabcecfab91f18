//! The run second by second, from what was recorded per order: how many orders were accepted
//! and seen confirmed in each second since the origin, and the end-to-end latency percentiles
//! of the orders seen confirmed in that second (the view a dashboard would show).

use crate::fire::Accepted;
use crate::poll::Terminal;
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Second {
    pub accepted: usize,
    pub confirmed: usize,
    /// End-to-end latency (ms) of the orders seen confirmed in this second; `None` when none was.
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
}

pub fn build(accepted: &[Accepted], terminal: &HashMap<Uuid, Terminal>) -> Vec<Second> {
    let mut seconds: Vec<Second> = Vec::new();
    let mut latencies: Vec<Vec<Duration>> = Vec::new();
    // The index of the second `when` falls in, growing both lists to hold it.
    let at = |seconds: &mut Vec<Second>, latencies: &mut Vec<Vec<Duration>>, when: Duration| {
        let index = when.as_secs() as usize;
        if seconds.len() <= index {
            seconds.resize(index + 1, Second::default());
            latencies.resize(index + 1, Vec::new());
        }
        index
    };
    for order in accepted {
        let index = at(&mut seconds, &mut latencies, order.accepted_at);
        seconds[index].accepted += 1;
        if let Some(done) = terminal.get(&order.id).filter(|t| t.confirmed) {
            let index = at(&mut seconds, &mut latencies, done.seen_at);
            seconds[index].confirmed += 1;
            latencies[index].push(done.seen_at.saturating_sub(order.accepted_at));
        }
    }
    for (second, mut values) in seconds.iter_mut().zip(latencies) {
        if values.is_empty() {
            continue;
        }
        values.sort_unstable();
        let ms = |p| crate::report::percentile(&values, p).as_secs_f64() * 1000.0;
        (second.p50, second.p90, second.p99) = (Some(ms(50.0)), Some(ms(90.0)), Some(ms(99.0)));
    }
    seconds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(accepted_ms: u64) -> Accepted {
        Accepted {
            id: Uuid::now_v7(),
            latency: Duration::from_millis(5),
            accepted_at: Duration::from_millis(accepted_ms),
        }
    }

    #[test]
    fn orders_land_in_the_second_they_were_accepted_and_confirmed() {
        let orders = [order(100), order(900), order(1_500), order(2_100)];
        let mut terminal = HashMap::new();
        let seen = |ms| Terminal { confirmed: true, seen_at: Duration::from_millis(ms) };
        terminal.insert(orders[0].id, seen(1_100)); // 1 s end to end, seen in second 1
        terminal.insert(orders[1].id, seen(1_200)); // 300 ms, second 1
        terminal.insert(orders[2].id, seen(3_500)); // 2 s, second 3
        terminal.insert(orders[3].id, Terminal { confirmed: false, seen_at: Duration::from_millis(2_500) });

        let seconds = build(&orders, &terminal);

        assert_eq!(seconds.len(), 4);
        let counts: Vec<(usize, usize)> = seconds.iter().map(|s| (s.accepted, s.confirmed)).collect();
        assert_eq!(counts, [(2, 0), (1, 2), (1, 0), (0, 1)]);
        assert_eq!(seconds[1].p50, Some(300.0));
        assert_eq!(seconds[1].p99, Some(1_000.0));
        assert_eq!(seconds[2].p50, None, "a failed order has no end-to-end latency");
        assert_eq!(seconds[3].p90, Some(2_000.0));
    }
}
