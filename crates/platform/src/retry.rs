//! One retry schedule with one meaning for every service: the waits *between* attempts. A
//! schedule of `n` delays allows `n + 1` attempts: the first attempt is immediate, the
//! `k`-th failure waits `delays[k - 1]`, and the failure after the last delay is final.
//!
//! Jitter only lengthens a wait, by up to [`JITTER`] (20 %), never shortens it. Jitter exists
//! so that work that failed together (an outage) does not come back together; lengthening
//! is enough for that, and it keeps every promise made in terms of the nominal schedule: a
//! schedule whose delays add up to 24 h retries for at least 24 h, whatever the dice say.

use crate::settings::SettingsError;
use std::time::Duration;

/// The largest share by which jitter lengthens one wait.
pub const JITTER: f64 = 0.2;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl RetrySchedule {
    pub fn new(delays: Vec<Duration>) -> Self {
        Self { delays }
    }

    /// Parses a comma-separated list of milliseconds (`"2000, 4000,8000"`) read from the
    /// setting `key`. An empty list means one attempt and no retries. The error names the
    /// setting and says what it expects.
    pub fn parse(key: &'static str, raw: &str) -> Result<Self, SettingsError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(Self::default());
        }
        let delays = raw
            .split(',')
            .map(str::trim)
            .map(|part| {
                part.parse::<u64>().map(Duration::from_millis).map_err(|_| SettingsError::Invalid {
                    key,
                    reason: format!(
                        "`{part}` is not a whole number of milliseconds; expected the waits between \
                         attempts as comma-separated milliseconds, e.g. `2000,4000,8000` (4 attempts)"
                    ),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { delays })
    }

    /// The nominal waits between attempts, in order.
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// How many attempts the schedule allows in all: one more than its delays.
    pub fn attempts(&self) -> usize {
        self.delays.len() + 1
    }

    /// The nominal wait after `failed_attempts` failures (1-based), or `None` once they reach
    /// [`attempts`](Self::attempts): the failure was the last attempt.
    pub fn delay_after(&self, failed_attempts: u32) -> Option<Duration> {
        let index = usize::try_from(failed_attempts).ok()?.checked_sub(1)?;
        self.delays.get(index).copied()
    }

    /// [`delay_after`](Self::delay_after) with random jitter (see [`jittered`]).
    pub fn jittered_delay_after(&self, failed_attempts: u32) -> Option<Duration> {
        self.delay_after(failed_attempts).map(|delay| jittered(delay, rand::random::<f64>()))
    }

    /// The sum of the nominal delays: the shortest time from the first to the last attempt,
    /// since jitter only lengthens waits.
    pub fn total(&self) -> Duration {
        self.delays.iter().sum()
    }

    /// The longest time from the first to the last attempt, with every wait jittered fully.
    pub fn max_total(&self) -> Duration {
        self.delays.iter().map(|delay| jittered(*delay, 1.0)).sum()
    }
}

/// `delay` lengthened by `unit` × [`JITTER`]; `unit` is clamped to [0, 1] (a random draw in
/// production, a fixed value in tests).
pub fn jittered(delay: Duration, unit: f64) -> Duration {
    let unit = if unit.is_nan() { 0.0 } else { unit.clamp(0.0, 1.0) };
    delay.mul_f64(1.0 + JITTER * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().copied().map(Duration::from_millis).collect()
    }

    #[test]
    fn a_list_of_milliseconds_parses_with_spaces_and_an_empty_list_means_one_attempt() {
        let parsed = RetrySchedule::parse("notification_retry_delays_ms", " 2000, 4000 ,8000 ");
        assert_eq!(parsed.map_err(|e| e.to_string()), Ok(RetrySchedule::new(ms(&[2000, 4000, 8000]))));
        let empty = RetrySchedule::parse("x_retry_delays_ms", "  ").map_err(|e| e.to_string());
        assert_eq!(empty.map(|s| s.attempts()), Ok(1));
    }

    #[test]
    fn a_bad_entry_is_refused_naming_the_setting_and_the_entry() {
        for raw in ["2000,ten", "2000,,4000", "-5", "1.5"] {
            let error =
                RetrySchedule::parse("payment_retry_delays_ms", raw).map(|_| ()).map_err(|e| e.to_string());
            let Err(message) = error else { panic!("`{raw}` must be refused") };
            assert!(message.contains("`payment_retry_delays_ms`"), "{message}");
            assert!(message.contains("milliseconds"), "{message}");
        }
    }

    #[test]
    fn n_delays_make_n_plus_one_attempts_and_every_delay_is_used() {
        let schedule = RetrySchedule::new(ms(&[2000, 4000, 8000]));
        assert_eq!(schedule.attempts(), 4);
        assert_eq!(schedule.delay_after(0), None, "no failure yet, nothing to wait for");
        assert_eq!(schedule.delay_after(1), Some(Duration::from_millis(2000)));
        assert_eq!(schedule.delay_after(2), Some(Duration::from_millis(4000)));
        assert_eq!(schedule.delay_after(3), Some(Duration::from_millis(8000)), "the last delay is used");
        assert_eq!(schedule.delay_after(4), None, "the fourth failure is final");
        assert_eq!(RetrySchedule::default().delay_after(1), None);
    }

    #[test]
    fn jitter_only_lengthens_by_at_most_twenty_percent() {
        let second = Duration::from_secs(1);
        assert_eq!(jittered(second, 0.0), second);
        assert_eq!(jittered(second, 1.0), Duration::from_millis(1200));
        assert_eq!(jittered(second, 7.0), Duration::from_millis(1200), "clamped");
        assert_eq!(jittered(second, -1.0), second, "clamped");
        assert_eq!(jittered(second, f64::NAN), second);
        let schedule = RetrySchedule::new(ms(&[1000]));
        for _ in 0..1000 {
            let Some(delay) = schedule.jittered_delay_after(1) else { panic!("a delay") };
            assert!((1000..=1200).contains(&delay.as_millis()), "{delay:?}");
        }
    }

    #[test]
    fn the_total_is_the_nominal_sum_and_bounds_every_jittered_run_from_below() {
        let schedule = RetrySchedule::new(ms(&[5_000, 300_000, 1_800_000]));
        assert_eq!(schedule.total(), Duration::from_millis(2_105_000));
        assert_eq!(schedule.max_total(), Duration::from_millis(2_526_000));
        for _ in 0..200 {
            let run: Duration = (1..=3).filter_map(|k| schedule.jittered_delay_after(k)).sum();
            assert!(run >= schedule.total() && run <= schedule.max_total(), "{run:?}");
        }
    }
}
