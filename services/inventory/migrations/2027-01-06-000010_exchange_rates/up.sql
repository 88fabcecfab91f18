-- The day's reference exchange rates (units of `currency` per one `base`, the ECB's EUR), all
-- from one feed: a refresh replaces every row in one transaction.
CREATE TABLE exchange_rates (
    currency   TEXT PRIMARY KEY CHECK (currency ~ '^[A-Z]{3}$'),
    rate       NUMERIC(20, 10) NOT NULL CHECK (rate > 0),
    base       TEXT NOT NULL CHECK (base ~ '^[A-Z]{3}$' AND base <> currency),
    rate_date  DATE NOT NULL,
    loaded_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
