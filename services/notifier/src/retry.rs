//! Moving failed notifications back to pending, from the admin route or the command line
//! (`notifier retry-failed`). Only `failed` rows move: a sent message is never sent again, and
//! the attempts already made stay in `notification_attempts`.

use crate::settings::Settings;
use crate::store::admin;
use chrono::{DateTime, Utc};
use serde::Deserialize;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

/// Which failed notifications to retry: created in [`since`, `until`), at most `limit`.
#[derive(Debug, Default, Clone, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct RetryFailed {
    /// Only notifications created at or after this instant (RFC 3339).
    #[arg(long)]
    pub since: Option<DateTime<Utc>>,
    /// Only notifications created before this instant (RFC 3339).
    #[arg(long)]
    pub until: Option<DateTime<Utc>>,
    /// At most this many (1 to 1000; default 100).
    #[arg(long)]
    pub limit: Option<i64>,
}

impl RetryFailed {
    pub fn limit(&self) -> Result<i64, String> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if (1..=MAX_LIMIT).contains(&limit) {
            Ok(limit)
        } else {
            Err(format!("must be between 1 and {MAX_LIMIT}"))
        }
    }
}

/// The command: connects with the service's own settings and returns how many rows moved.
/// A running notifier picks them up at its next poll.
pub async fn run_cli(settings: &Settings, request: &RetryFailed) -> anyhow::Result<usize> {
    let limit = request.limit().map_err(|reason| anyhow::anyhow!("--limit {reason}"))?;
    let pool = platform::db::pool(settings.common.database_url.expose(), 2)?;
    let mut conn = pool.get().await?;
    Ok(admin::retry_failed(&mut conn, request.since, request.until, limit).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_defaults_to_100_and_stays_within_1000() {
        assert_eq!(RetryFailed::default().limit(), Ok(100));
        assert_eq!(RetryFailed { limit: Some(1000), ..RetryFailed::default() }.limit(), Ok(1000));
        assert!(RetryFailed { limit: Some(1001), ..RetryFailed::default() }.limit().is_err());
        assert!(RetryFailed { limit: Some(0), ..RetryFailed::default() }.limit().is_err());
    }
}
