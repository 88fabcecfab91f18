-- Expand only: two new tables.

-- The gateway's copy of inventory's exchange rates, fed by `exchange_rates.updated` (units of
-- `currency` per one `base`), so orders are converted without calling inventory.
CREATE TABLE exchange_rates (
    currency    TEXT PRIMARY KEY CHECK (currency ~ '^[A-Z]{3}$'),
    rate        NUMERIC(20, 10) NOT NULL CHECK (rate > 0),
    base        TEXT NOT NULL CHECK (base ~ '^[A-Z]{3}$' AND base <> currency),
    rate_date   DATE NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The rate an order paid in another currency than its products' was converted with, locked
-- when it was placed: one `from_currency` costs `rate` `to_currency` (the order's currency).
CREATE TABLE order_exchange_rates (
    order_id       UUID PRIMARY KEY REFERENCES orders (id) ON DELETE CASCADE,
    from_currency  TEXT NOT NULL CHECK (from_currency ~ '^[A-Z]{3}$'),
    to_currency    TEXT NOT NULL CHECK (to_currency ~ '^[A-Z]{3}$' AND to_currency <> from_currency),
    rate           NUMERIC(24, 10) NOT NULL CHECK (rate > 0),
    rate_date      DATE NOT NULL
);
