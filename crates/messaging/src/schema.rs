// Tables live in the service's own schema, reached through its role's search_path.
diesel::table! {
    outbox (seq) {
        seq -> BigInt,
        event_id -> Uuid,
        routing_key -> Text,
        payload -> Bytea,
        traceparent -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    inbox (event_id) {
        event_id -> Uuid,
        event_type -> Text,
        handled_at -> Timestamptz,
    }
}
