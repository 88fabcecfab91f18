CREATE TABLE users (
    id             UUID PRIMARY KEY,
    -- Stored lower-cased, so `Ada@Example.com` and `ada@example.com` are one account.
    email          TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('customer', 'admin')),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Expand only: old rows are guest orders (no owner).
ALTER TABLE orders ADD COLUMN customer_id UUID REFERENCES users (id);
ALTER TABLE orders ADD COLUMN customer_phone TEXT;
CREATE INDEX orders_customer ON orders (customer_id, id);
