CREATE TABLE products (
    id           UUID PRIMARY KEY,
    sku          TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    description  TEXT,
    price        NUMERIC(14, 2) NOT NULL CHECK (price >= 0),
    currency     TEXT NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- The database, not the code, guarantees stock never goes negative or over-reserved.
    on_hand      BIGINT NOT NULL CHECK (on_hand >= 0),
    reserved     BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0 AND reserved <= on_hand),
    version      BIGINT NOT NULL DEFAULT 1,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE reservations (
    order_id     UUID NOT NULL,
    product_id   UUID NOT NULL REFERENCES products (id),
    quantity     BIGINT NOT NULL CHECK (quantity > 0),
    status       TEXT NOT NULL CHECK (status IN ('reserved', 'committed', 'released')),
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, product_id)
);
