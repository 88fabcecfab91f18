// @generated automatically by Diesel CLI.

pub mod payment {
    diesel::table! {
        payment.order_cancellations (order_id) {
            order_id -> Uuid,
            event_id -> Uuid,
            cancelled_at -> Timestamptz,
        }
    }

    diesel::table! {
        payment.payment_attempts (id) {
            id -> Int8,
            payment_id -> Uuid,
            operation -> Text,
            idempotency_key -> Nullable<Text>,
            outcome -> Text,
            error -> Nullable<Text>,
            at -> Timestamptz,
        }
    }

    diesel::table! {
        payment.payment_provider_events (id) {
            id -> Int8,
            provider -> Text,
            provider_event_id -> Text,
            event_type -> Text,
            payment_id -> Nullable<Uuid>,
            outcome -> Text,
            received_at -> Timestamptz,
        }
    }

    diesel::table! {
        payment.payment_transitions (id) {
            id -> Int8,
            payment_id -> Uuid,
            from_status -> Nullable<Text>,
            to_status -> Text,
            cause -> Text,
            at -> Timestamptz,
        }
    }

    diesel::table! {
        payment.payments (id) {
            id -> Uuid,
            order_id -> Uuid,
            amount -> Numeric,
            currency -> Text,
            payment_method -> Text,
            provider -> Text,
            status -> Text,
            failure_code -> Nullable<Text>,
            failure_message -> Nullable<Text>,
            created_at -> Timestamptz,
            updated_at -> Timestamptz,
            provider_ref -> Nullable<Text>,
            attempt -> Int4,
            confirmed -> Bool,
            retries -> Int4,
            next_attempt_at -> Nullable<Timestamptz>,
            last_error -> Nullable<Text>,
            decline_code -> Nullable<Text>,
            expires_at -> Nullable<Timestamptz>,
            refunded_amount -> Numeric,
            cancel_requested -> Bool,
            traceparent -> Nullable<Text>,
            customer_id -> Nullable<Uuid>,
        }
    }

    diesel::table! {
        payment.refunds (id) {
            id -> Uuid,
            payment_id -> Uuid,
            amount -> Numeric,
            provider_ref -> Text,
            reason -> Text,
            created_at -> Timestamptz,
        }
    }

    diesel::table! {
        payment.sim_intents (id) {
            id -> Text,
            idempotency_key -> Text,
            payment_method -> Text,
            amount -> Numeric,
            currency -> Text,
            status -> Text,
            failure_code -> Nullable<Text>,
            decline_code -> Nullable<Text>,
            confirm_calls -> Int4,
            created_at -> Timestamptz,
        }
    }

    diesel::table! {
        payment.sim_refunds (id) {
            id -> Text,
            idempotency_key -> Text,
            intent_id -> Text,
            amount -> Numeric,
            created_at -> Timestamptz,
        }
    }

    diesel::joinable!(payment_attempts -> payments (payment_id));
    diesel::joinable!(payment_provider_events -> payments (payment_id));
    diesel::joinable!(payment_transitions -> payments (payment_id));
    diesel::joinable!(refunds -> payments (payment_id));
    diesel::joinable!(sim_refunds -> sim_intents (intent_id));

    diesel::allow_tables_to_appear_in_same_query!(
        order_cancellations,
        payment_attempts,
        payment_provider_events,
        payment_transitions,
        payments,
        refunds,
        sim_intents,
        sim_refunds,
    );
}
