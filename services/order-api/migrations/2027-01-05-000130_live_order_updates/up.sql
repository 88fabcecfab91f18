-- Live order updates (`GET /api/v1/orders/{id}/events`, `GET /api/v1/orders/events`).
--
-- `tx`: the transaction that wrote the row (its 64-bit id, epoch included, so it never wraps).
-- Row ids come from a sequence when the row is written, not when it commits, so a row with a
-- lower id can become visible after one with a higher id. The stream therefore runs in
-- (tx, id) order and serves a row only once every transaction older than the oldest one still
-- running has ended (`tx < pg_snapshot_xmin(pg_current_snapshot())`): nothing can appear
-- behind a row already served, so a client resuming after it misses nothing.
ALTER TABLE order_status_history
    ADD COLUMN tx BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX order_status_history_stream ON order_status_history (tx, id);

-- Wakes every gateway replica's listener when a transaction that wrote history commits
-- (NOTIFY is delivered at commit); once per statement, not per row.
CREATE FUNCTION order_status_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('order_status', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER order_status_notify AFTER INSERT ON order_status_history
    FOR EACH STATEMENT EXECUTE FUNCTION order_status_notify();
