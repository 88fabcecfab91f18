-- The payment state machine (src/domain/status.rs), its logs, refunds, remembered
-- cancellations, and the simulated provider's own state.
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check CHECK (status IN
    ('pending', 'processing', 'requires_action', 'succeeded', 'failed', 'refunded',
     'partially_refunded', 'voided'));
ALTER TABLE payments
    -- The provider's id for the payment (a PaymentIntent id), once created.
    ADD COLUMN provider_ref      TEXT,
    -- The number in the provider idempotency key `pay_<id>_<attempt>`.
    ADD COLUMN attempt           INTEGER NOT NULL DEFAULT 1,
    -- The confirmation reached the provider and was answered.
    ADD COLUMN confirmed         BOOLEAN NOT NULL DEFAULT false,
    -- Consecutive transient failures of the current job.
    ADD COLUMN retries           INTEGER NOT NULL DEFAULT 0,
    -- When a worker should look at the row next (NULL: nothing to do); a lease while in hand.
    ADD COLUMN next_attempt_at   TIMESTAMPTZ DEFAULT now(),
    ADD COLUMN last_error        TEXT,
    ADD COLUMN decline_code      TEXT,
    -- Waiting on the customer or the provider ends here (the grace period).
    ADD COLUMN expires_at        TIMESTAMPTZ,
    ADD COLUMN refunded_amount   NUMERIC(14, 2) NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0),
    ADD COLUMN cancel_requested  BOOLEAN NOT NULL DEFAULT false;
UPDATE payments SET next_attempt_at = NULL, confirmed = true;
CREATE INDEX payments_due ON payments (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX payments_open_expiry ON payments (expires_at)
    WHERE status IN ('pending', 'processing', 'requires_action');
CREATE UNIQUE INDEX payments_provider_ref ON payments (provider, provider_ref);

CREATE TABLE payment_transitions (
    id           BIGSERIAL PRIMARY KEY,
    payment_id   UUID NOT NULL REFERENCES payments (id),
    from_status  TEXT,
    to_status    TEXT NOT NULL,
    cause        TEXT NOT NULL,
    at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX payment_transitions_payment ON payment_transitions (payment_id, id);

-- Every call to the provider and what came back.
CREATE TABLE payment_attempts (
    id               BIGSERIAL PRIMARY KEY,
    payment_id       UUID NOT NULL REFERENCES payments (id),
    operation        TEXT NOT NULL,
    idempotency_key  TEXT,
    outcome          TEXT NOT NULL,
    error            TEXT,
    at               TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX payment_attempts_payment ON payment_attempts (payment_id, id);

-- Every verified provider callback, once (the unique key turns duplicates into no-ops).
CREATE TABLE payment_provider_events (
    id                 BIGSERIAL PRIMARY KEY,
    provider           TEXT NOT NULL,
    provider_event_id  TEXT NOT NULL,
    event_type         TEXT NOT NULL,
    payment_id         UUID REFERENCES payments (id),
    outcome            TEXT NOT NULL,
    received_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (provider, provider_event_id)
);

CREATE TABLE refunds (
    id            UUID PRIMARY KEY,
    payment_id    UUID NOT NULL REFERENCES payments (id),
    amount        NUMERIC(14, 2) NOT NULL CHECK (amount > 0),
    provider_ref  TEXT NOT NULL,
    reason        TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Cancellations, remembered even when they arrive before the payment request.
CREATE TABLE order_cancellations (
    order_id      UUID PRIMARY KEY,
    event_id      UUID NOT NULL,
    cancelled_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The simulated provider's own state: it behaves like a remote provider, idempotent on the key.
CREATE TABLE sim_intents (
    id               TEXT PRIMARY KEY,
    idempotency_key  TEXT NOT NULL UNIQUE,
    payment_method   TEXT NOT NULL,
    amount           NUMERIC(14, 2) NOT NULL,
    currency         TEXT NOT NULL,
    status           TEXT NOT NULL,
    failure_code     TEXT,
    decline_code     TEXT,
    confirm_calls    INTEGER NOT NULL DEFAULT 0,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE sim_refunds (
    id               TEXT PRIMARY KEY,
    idempotency_key  TEXT NOT NULL UNIQUE,
    intent_id        TEXT NOT NULL REFERENCES sim_intents (id),
    amount           NUMERIC(14, 2) NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
