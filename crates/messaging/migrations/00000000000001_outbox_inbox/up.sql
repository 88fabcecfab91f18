-- Events waiting to be published; written in the same transaction as the state change that
-- caused them, deleted by the relay once RabbitMQ has confirmed them.
CREATE TABLE outbox (
    seq          BIGSERIAL PRIMARY KEY,
    event_id     UUID NOT NULL UNIQUE,
    routing_key  TEXT NOT NULL,
    payload      BYTEA NOT NULL,
    traceparent  TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Wake the relay as soon as a transaction that wrote events commits (NOTIFY is delivered at
-- commit); once per statement, not per row.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- Events already handled; the handler's effects and this row commit together, so a redelivered
-- event finds its id here and has no second effect.
CREATE TABLE inbox (
    event_id     UUID PRIMARY KEY,
    event_type   TEXT NOT NULL,
    handled_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX inbox_handled_at ON inbox (handled_at);
