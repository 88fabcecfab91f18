// @generated automatically by Diesel CLI.

pub mod webhooks {
    diesel::table! {
        webhooks.attempts (id) {
            id -> Uuid,
            delivery_id -> Uuid,
            attempted_at -> Timestamptz,
            status_code -> Nullable<Int4>,
            duration_ms -> Int4,
            response_body -> Nullable<Text>,
            error -> Nullable<Text>,
        }
    }

    diesel::table! {
        webhooks.deliveries (id) {
            id -> Uuid,
            endpoint_id -> Uuid,
            event_id -> Uuid,
            event_type -> Text,
            order_id -> Nullable<Uuid>,
            payload -> Bytea,
            status -> Text,
            attempts -> Int4,
            next_attempt_at -> Timestamptz,
            last_status_code -> Nullable<Int4>,
            last_error -> Nullable<Text>,
            created_at -> Timestamptz,
            delivered_at -> Nullable<Timestamptz>,
            schedule_base -> Int4,
        }
    }

    diesel::table! {
        webhooks.endpoints (id) {
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

    diesel::joinable!(attempts -> deliveries (delivery_id));
    diesel::joinable!(deliveries -> endpoints (endpoint_id));

    diesel::allow_tables_to_appear_in_same_query!(attempts, deliveries, endpoints,);
}
