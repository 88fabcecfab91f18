//! Webhook rules, free of SQL and HTTP: what a valid endpoint is, and what happens after an
//! attempt.

mod endpoint;

pub use endpoint::*;

use chrono::{DateTime, Utc};
use platform::retry::RetrySchedule;
use std::time::Duration;

/// How long a rotated-out secret still signs deliveries, next to the new one.
pub const SECRET_OVERLAP: Duration = Duration::from_secs(24 * 3600);
/// A `Retry-After` further out than this is taken as this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// What a failed attempt means for its delivery and endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try again on the schedule (5xx, 408, 429, 3xx, timeouts, connection errors).
    Retry,
    /// The receiver refused this message (other 4xx) or we refused the target: never retry it.
    GiveUp,
    /// 410 Gone: the receiver says the endpoint no longer exists.
    DisableEndpoint,
}

/// `status` is the answer's status code, `None` when there was no answer.
pub fn after_failure(status: Option<u16>) -> AfterFailure {
    match status {
        Some(410) => AfterFailure::DisableEndpoint,
        Some(408 | 429) => AfterFailure::Retry,
        Some(400..=499) => AfterFailure::GiveUp,
        Some(_) | None => AfterFailure::Retry,
    }
}

/// The wait after failed attempt number `attempt` (1-based, counted from the start of the
/// current schedule), or `None` once the schedule is used up. Jittered as every schedule is
/// (only lengthened, see `platform::retry`), so the nominal total is a floor; a `Retry-After`
/// from the receiver makes the wait at least that long.
pub fn next_delay(schedule: &RetrySchedule, attempt: i32, retry_after: Option<Duration>) -> Option<Duration> {
    let scheduled = schedule.jittered_delay_after(u32::try_from(attempt).ok()?)?;
    Some(retry_after.map_or(scheduled, |after| after.max(scheduled)))
}

/// A `Retry-After` value (RFC 9110 §10.2.3): delay-seconds or an HTTP date, capped at
/// [`MAX_RETRY_AFTER`]. A date in the past means now; anything unparsable is ignored.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let at = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
        (at - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

contracts::text_enum! {
    /// Where a delivery stands: due (again) at `next_attempt_at`, done, or given up on.
    #[derive(serde::Deserialize)]
    pub enum DeliveryStatus {
        Pending,
        Delivered,
        Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_schedule_then_stop() {
        let schedule = RetrySchedule::new(vec![Duration::from_secs(5), Duration::from_secs(60)]);
        let within = |d: Option<Duration>, nominal: u64| {
            d.is_some_and(|d| d >= Duration::from_secs(nominal) && d <= Duration::from_secs(nominal) * 6 / 5)
        };
        assert!(within(next_delay(&schedule, 1, None), 5));
        assert!(within(next_delay(&schedule, 2, None), 60));
        assert_eq!(next_delay(&schedule, 3, None), None);
        assert_eq!(next_delay(&schedule, 0, None), None);
        assert_eq!(next_delay(&RetrySchedule::default(), 1, None), None);
    }

    #[test]
    fn gone_disables_other_client_errors_give_up_and_the_rest_retry() {
        assert_eq!(after_failure(Some(410)), AfterFailure::DisableEndpoint);
        for status in [400, 401, 403, 404, 413, 422] {
            assert_eq!(after_failure(Some(status)), AfterFailure::GiveUp, "{status}");
        }
        for status in [Some(408), Some(429), Some(500), Some(503), Some(302), None] {
            assert_eq!(after_failure(status), AfterFailure::Retry, "{status:?}");
        }
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date_and_is_capped() {
        let now = DateTime::parse_from_rfc3339("2026-11-22T10:00:00Z").map(|d| d.with_timezone(&Utc));
        let Ok(now) = now else { return };
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Sun, 22 Nov 2026 10:05:00 GMT", now), Some(Duration::from_secs(300)));
        assert_eq!(parse_retry_after("Sun, 22 Nov 2026 09:00:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("9999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn retry_after_lengthens_but_never_shortens_the_schedule() {
        let schedule = RetrySchedule::new(vec![Duration::from_secs(10)]);
        let longer = next_delay(&schedule, 1, Some(Duration::from_secs(60)));
        assert_eq!(longer, Some(Duration::from_secs(60)));
        let shorter = next_delay(&schedule, 1, Some(Duration::from_secs(1))).unwrap_or_default();
        assert!(shorter >= Duration::from_secs(10), "{shorter:?}");
        assert_eq!(next_delay(&schedule, 2, Some(Duration::from_secs(60))), None);
    }
}
