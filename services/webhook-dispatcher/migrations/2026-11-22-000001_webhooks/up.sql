CREATE TABLE endpoints (
    id           UUID PRIMARY KEY,
    url          TEXT NOT NULL,
    description  TEXT,
    -- Empty means every webhook event type, including types added to the list later.
    event_types  TEXT[] NOT NULL DEFAULT '{}',
    -- `whsec_<base64>`; stored as issued because every delivery must be signed with it.
    secret       TEXT NOT NULL,
    enabled      BOOLEAN NOT NULL DEFAULT true,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE deliveries (
    id                UUID PRIMARY KEY,
    endpoint_id       UUID NOT NULL REFERENCES endpoints (id),
    event_id          UUID NOT NULL,
    event_type        TEXT NOT NULL,
    order_id          UUID,
    -- The exact body POSTed, frozen at fan-out so every retry sends (and signs) the same bytes.
    payload           BYTEA NOT NULL,
    status            TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts          INT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- For a pending row: when it is due, or, while a worker holds it, when its lease ends.
    next_attempt_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_status_code  INT,
    last_error        TEXT,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at      TIMESTAMPTZ,
    -- A redelivered event never fans out twice to the same endpoint.
    UNIQUE (endpoint_id, event_id)
);

CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
