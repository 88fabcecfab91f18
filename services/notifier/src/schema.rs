// @generated automatically by Diesel CLI.

pub mod notifier {
    diesel::table! {
        notifier.notification_attempts (id) {
            id -> Uuid,
            notification_id -> Uuid,
            attempted_at -> Timestamptz,
            outcome -> Text,
            error -> Nullable<Text>,
            provider -> Nullable<Text>,
        }
    }

    diesel::table! {
        notifier.notifications (id) {
            id -> Uuid,
            order_id -> Uuid,
            kind -> Text,
            channel -> Text,
            recipient -> Text,
            subject -> Text,
            body -> Text,
            status -> Text,
            attempts -> Int4,
            next_attempt_at -> Timestamptz,
            last_error -> Nullable<Text>,
            created_at -> Timestamptz,
            sent_at -> Nullable<Timestamptz>,
            html_body -> Nullable<Text>,
            traceparent -> Nullable<Text>,
            provider -> Nullable<Text>,
        }
    }

    diesel::table! {
        notifier.order_ledger (order_id) {
            order_id -> Uuid,
            customer_name -> Text,
            customer_email -> Text,
            customer_phone -> Nullable<Text>,
            currency -> Nullable<Text>,
            total_amount -> Nullable<Numeric>,
            confirmed_at -> Nullable<Timestamptz>,
            failed_at -> Nullable<Timestamptz>,
            failure_reason -> Nullable<Text>,
            cancelled_at -> Nullable<Timestamptz>,
        }
    }

    diesel::table! {
        notifier.summaries (day) {
            day -> Date,
            sent_at -> Timestamptz,
            recipients -> Text,
        }
    }

    diesel::table! {
        notifier.summary_deliveries (day, recipient) {
            day -> Date,
            recipient -> Text,
            status -> Text,
            attempts -> Int4,
            last_error -> Nullable<Text>,
            updated_at -> Timestamptz,
        }
    }

    diesel::joinable!(notification_attempts -> notifications (notification_id));

    diesel::allow_tables_to_appear_in_same_query!(
        notification_attempts,
        notifications,
        order_ledger,
        summaries,
        summary_deliveries,
    );
}
