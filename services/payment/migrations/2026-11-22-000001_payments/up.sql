CREATE TABLE payments (
    id               UUID PRIMARY KEY,
    -- One payment per order: a repeated payment.requested can never charge twice.
    order_id         UUID NOT NULL UNIQUE,
    amount           NUMERIC(14, 2) NOT NULL CHECK (amount >= 0),
    currency         TEXT NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    payment_method   TEXT NOT NULL,
    provider         TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('succeeded', 'failed')),
    failure_code     TEXT,
    failure_message  TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
