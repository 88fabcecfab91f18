// @generated automatically by Diesel CLI.

pub mod order_api {
    diesel::table! {
        order_api.account_tokens (id) {
            id -> Uuid,
            user_id -> Uuid,
            purpose -> Text,
            token_hash -> Bytea,
            created_at -> Timestamptz,
            expires_at -> Timestamptz,
            used_at -> Nullable<Timestamptz>,
        }
    }

    diesel::table! {
        order_api.catalog_products (id) {
            id -> Uuid,
            sku -> Text,
            name -> Text,
            price -> Numeric,
            currency -> Text,
            available -> Int8,
            active -> Bool,
            version -> Int8,
            updated_at -> Timestamptz,
        }
    }

    diesel::table! {
        order_api.exchange_rates (currency) {
            currency -> Text,
            rate -> Numeric,
            base -> Text,
            rate_date -> Date,
            updated_at -> Timestamptz,
        }
    }

    diesel::table! {
        order_api.idempotency_keys (scope, key) {
            scope -> Text,
            key -> Text,
            fingerprint -> Bytea,
            response_status -> Nullable<Int4>,
            response_body -> Nullable<Bytea>,
            response_type -> Nullable<Text>,
            response_location -> Nullable<Text>,
            created_at -> Timestamptz,
        }
    }

    diesel::table! {
        order_api.login_attempts (subject) {
            subject -> Text,
            failures -> Int4,
            last_attempt_at -> Timestamptz,
            blocked_until -> Timestamptz,
        }
    }

    diesel::table! {
        order_api.order_access_tokens (order_id, purpose) {
            order_id -> Uuid,
            purpose -> Text,
            token_hash -> Bytea,
            created_at -> Timestamptz,
        }
    }

    diesel::table! {
        order_api.order_exchange_rates (order_id) {
            order_id -> Uuid,
            from_currency -> Text,
            to_currency -> Text,
            rate -> Numeric,
            rate_date -> Date,
        }
    }

    diesel::table! {
        order_api.order_items (order_id, line_no) {
            order_id -> Uuid,
            line_no -> Int4,
            product_id -> Uuid,
            product_name -> Text,
            quantity -> Int4,
            price_at_purchase -> Numeric,
            subtotal -> Numeric,
        }
    }

    diesel::table! {
        order_api.order_status_history (id) {
            id -> Int8,
            order_id -> Uuid,
            status -> Text,
            reason -> Nullable<Text>,
            caused_by -> Text,
            at -> Timestamptz,
            tx -> Int8,
        }
    }

    diesel::table! {
        order_api.orders (id) {
            id -> Uuid,
            status -> Text,
            failure_reason -> Nullable<Text>,
            customer_name -> Text,
            customer_email -> Text,
            currency -> Text,
            total_amount -> Numeric,
            payment_method -> Text,
            invoice_sent -> Bool,
            webhook_sent -> Bool,
            created_at -> Timestamptz,
            updated_at -> Timestamptz,
            customer_id -> Nullable<Uuid>,
            customer_phone -> Nullable<Text>,
            guest_client -> Nullable<Text>,
            refunded_amount -> Numeric,
            idempotency_scope -> Nullable<Text>,
            idempotency_key -> Nullable<Text>,
        }
    }

    diesel::table! {
        order_api.users (id) {
            id -> Uuid,
            email -> Text,
            name -> Text,
            password_hash -> Text,
            role -> Text,
            created_at -> Timestamptz,
            session_version -> Int8,
            sessions_revoked_at -> Nullable<Timestamptz>,
            email_verified_at -> Nullable<Timestamptz>,
        }
    }

    diesel::joinable!(account_tokens -> users (user_id));
    diesel::joinable!(order_access_tokens -> orders (order_id));
    diesel::joinable!(order_exchange_rates -> orders (order_id));
    diesel::joinable!(order_items -> orders (order_id));
    diesel::joinable!(order_status_history -> orders (order_id));
    diesel::joinable!(orders -> users (customer_id));

    diesel::allow_tables_to_appear_in_same_query!(
        account_tokens,
        catalog_products,
        exchange_rates,
        idempotency_keys,
        login_attempts,
        order_access_tokens,
        order_exchange_rates,
        order_items,
        order_status_history,
        orders,
        users,
    );
}
