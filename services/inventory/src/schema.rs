// @generated automatically by Diesel CLI.

pub mod inventory {
    diesel::table! {
        inventory.cancelled_orders (order_id) {
            order_id -> Uuid,
            cancelled_at -> Timestamptz,
        }
    }

    diesel::table! {
        inventory.exchange_rates (currency) {
            currency -> Text,
            rate -> Numeric,
            base -> Text,
            rate_date -> Date,
            loaded_at -> Timestamptz,
        }
    }

    diesel::table! {
        inventory.product_images (id) {
            id -> Uuid,
            product_id -> Uuid,
            position -> Int4,
            content_type -> Text,
            width -> Int4,
            height -> Int4,
            byte_size -> Int8,
            thumbnail_byte_size -> Int8,
            created_at -> Timestamptz,
        }
    }

    diesel::table! {
        inventory.products (id) {
            id -> Uuid,
            sku -> Text,
            name -> Text,
            description -> Nullable<Text>,
            price -> Numeric,
            currency -> Text,
            on_hand -> Int8,
            reserved -> Int8,
            version -> Int8,
            created_at -> Timestamptz,
            updated_at -> Timestamptz,
            deleted_at -> Nullable<Timestamptz>,
        }
    }

    diesel::table! {
        inventory.reservations (order_id, product_id) {
            order_id -> Uuid,
            product_id -> Uuid,
            quantity -> Int8,
            status -> Text,
            created_at -> Timestamptz,
            updated_at -> Timestamptz,
        }
    }

    diesel::table! {
        inventory.stock_adjustments (id) {
            id -> Uuid,
            product_id -> Uuid,
            delta -> Int8,
            reason -> Text,
            note -> Nullable<Text>,
            actor -> Uuid,
            created_at -> Timestamptz,
        }
    }

    diesel::joinable!(product_images -> products (product_id));
    diesel::joinable!(reservations -> products (product_id));
    diesel::joinable!(stock_adjustments -> products (product_id));

    diesel::allow_tables_to_appear_in_same_query!(
        cancelled_orders,
        exchange_rates,
        product_images,
        products,
        reservations,
        stock_adjustments,
    );
}
