-- One wake-up channel per schema. NOTIFY channels are per database, and the services may share
-- one database (a schema each): on the shared channel `outbox` every relay woke on every other
-- service's commit and ran an empty round (BEGIN, SELECT ... FOR UPDATE SKIP LOCKED, COMMIT),
-- about 4.5 wasted transactions per order. The relay listens on `outbox_<its schema>`.
CREATE OR REPLACE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_' || TG_TABLE_SCHEMA, '');
    RETURN NULL;
END;
$$;
