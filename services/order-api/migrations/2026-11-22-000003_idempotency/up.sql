-- The first answer to each (caller, Idempotency-Key), replayed for 24 hours.
CREATE TABLE idempotency_keys (
    scope             TEXT NOT NULL,
    key               TEXT NOT NULL,
    fingerprint       BYTEA NOT NULL,
    response_status   INT,
    response_body     BYTEA,
    response_type     TEXT,
    response_location TEXT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
