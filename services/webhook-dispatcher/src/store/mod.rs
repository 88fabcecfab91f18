//! The dispatcher's tables and the only SQL in the service. Query functions take a connection
//! so they compose inside the caller's transaction.

mod attempt_rows;
mod delivery_rows;
mod endpoint_rows;

pub use attempt_rows::*;
pub use delivery_rows::*;
pub use endpoint_rows::*;

use std::time::Duration;

diesel::table! {
    endpoints (id) {
        id -> Uuid,
        url -> Text,
        description -> Nullable<Text>,
        event_types -> Array<Text>,
        secret -> Text,
        enabled -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        headers -> Jsonb,
        previous_secret -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<Timestamptz>,
        failing_since -> Nullable<Timestamptz>,
        disabled_reason -> Nullable<Text>,
    }
}

diesel::table! {
    deliveries (id) {
        id -> Uuid,
        endpoint_id -> Uuid,
        event_id -> Uuid,
        event_type -> Text,
        order_id -> Nullable<Uuid>,
        payload -> Bytea,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamptz,
        last_status_code -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
        schedule_base -> Integer,
    }
}

diesel::table! {
    attempts (id) {
        id -> Uuid,
        delivery_id -> Uuid,
        attempted_at -> Timestamptz,
        status_code -> Nullable<Integer>,
        duration_ms -> Integer,
        response_body -> Nullable<Text>,
        error -> Nullable<Text>,
    }
}

diesel::joinable!(deliveries -> endpoints (endpoint_id));
diesel::joinable!(attempts -> deliveries (delivery_id));
diesel::allow_tables_to_appear_in_same_query!(endpoints, deliveries, attempts);

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
