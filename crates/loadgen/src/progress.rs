//! Live counters of a run and the once-a-second progress line on stderr. The ticker also keeps
//! a CPU reading every second, so the cost per order can be compared between the start and the
//! end of the run (crate::growth).

use crate::cpu::{self, Sample, Watched};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Shared by the firing workers (accepted), the poller (confirmed, failed) and the ticker.
#[derive(Default)]
pub struct Counters {
    pub accepted: AtomicUsize,
    pub confirmed: AtomicUsize,
    pub failed: AtomicUsize,
}

impl Counters {
    fn read(&self) -> (usize, usize, usize) {
        (
            self.accepted.load(Ordering::Relaxed),
            self.confirmed.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// A CPU reading taken at `at` (since the run's origin).
pub struct Tick {
    pub at: Duration,
    pub sample: Sample,
}

pub struct Ticker {
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<Vec<Tick>>,
}

/// Starts the once-a-second line: `[  12 s] accepted/s 290  confirmed/s 80  backlog 1234`,
/// where the backlog is accepted orders not yet seen confirmed or failed.
pub fn start(counters: Arc<Counters>, watched: Vec<Watched>, origin: Instant) -> Ticker {
    let stop = Arc::new(AtomicBool::new(false));
    let handle = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut ticks = Vec::new();
            let mut last = counters.read();
            let mut ticker = tokio::time::interval(Duration::from_secs(1));
            ticker.tick().await;
            while !stop.load(Ordering::Relaxed) {
                ticker.tick().await;
                // A process that died is reported by the final reading; here it only stops
                // the per-second figures.
                if let Ok(sample) = cpu::sample(&watched) {
                    ticks.push(Tick { at: origin.elapsed(), sample });
                }
                let now = counters.read();
                eprintln!("{}", line(origin.elapsed(), last, now));
                last = now;
            }
            ticks
        })
    };
    Ticker { stop, handle }
}

impl Ticker {
    /// Stops the line and hands back the CPU readings taken once a second.
    pub async fn finish(self) -> Vec<Tick> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.await.unwrap_or_default()
    }
}

fn line(at: Duration, last: (usize, usize, usize), now: (usize, usize, usize)) -> String {
    let (accepted, confirmed, failed) = now;
    let mut text = format!(
        "[{:>5} s] accepted/s {:>5}  confirmed/s {:>5}  backlog {:>6}",
        at.as_secs(),
        accepted.saturating_sub(last.0),
        confirmed.saturating_sub(last.1),
        accepted.saturating_sub(confirmed + failed)
    );
    if failed > 0 {
        text.push_str(&format!("  failed {failed}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_rates_of_the_last_second_and_the_backlog() {
        let text = line(Duration::from_secs(12), (100, 40, 0), (390, 120, 2));
        assert_eq!(text, "[   12 s] accepted/s   290  confirmed/s    80  backlog    268  failed 2");
    }
}
