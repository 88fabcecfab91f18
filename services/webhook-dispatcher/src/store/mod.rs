//! The dispatcher's tables and the only SQL in the service. Query functions take a connection
//! so they compose inside the caller's transaction.

mod attempt_rows;
mod delivery_rows;
mod endpoint_rows;

pub use attempt_rows::*;
pub use delivery_rows::*;
pub use endpoint_rows::*;

use std::time::Duration;

pub use crate::domain::DeliveryStatus;
pub(crate) use crate::schema::webhooks::{attempts, deliveries, endpoints};
pub use contracts::events::DisabledReason;

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
