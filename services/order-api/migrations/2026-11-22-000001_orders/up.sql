-- The gateway's read model of the catalog, fed by product.upserted: orders are validated and
-- priced here without calling inventory, so intake works while inventory is down.
CREATE TABLE catalog_products (
    id          UUID PRIMARY KEY,
    sku         TEXT NOT NULL,
    name        TEXT NOT NULL,
    price       NUMERIC(14, 2) NOT NULL,
    currency    TEXT NOT NULL,
    available   BIGINT NOT NULL,
    active      BOOLEAN NOT NULL,
    version     BIGINT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id              UUID PRIMARY KEY,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'confirmed', 'failed', 'cancelled', 'shipped', 'delivered')),
    failure_reason  TEXT,
    customer_name   TEXT NOT NULL,
    customer_email  TEXT NOT NULL,
    currency        TEXT NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    total_amount    NUMERIC(14, 2) NOT NULL CHECK (total_amount >= 0),
    payment_method  TEXT NOT NULL,
    invoice_sent    BOOLEAN NOT NULL DEFAULT false,
    webhook_sent    BOOLEAN NOT NULL DEFAULT false,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX orders_status_created ON orders (status, created_at);

CREATE TABLE order_items (
    order_id           UUID NOT NULL REFERENCES orders (id),
    line_no            INT NOT NULL,
    product_id         UUID NOT NULL,
    product_name       TEXT NOT NULL,
    quantity           INT NOT NULL CHECK (quantity > 0),
    price_at_purchase  NUMERIC(14, 2) NOT NULL,
    subtotal           NUMERIC(14, 2) NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE order_status_history (
    id         BIGSERIAL PRIMARY KEY,
    order_id   UUID NOT NULL REFERENCES orders (id),
    status     TEXT NOT NULL,
    reason     TEXT,
    -- What caused the move: an event id (`event:<uuid>`) or an actor (`api`).
    caused_by  TEXT NOT NULL,
    at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX order_status_history_order ON order_status_history (order_id, id);
