-- Expand only: a nullable column and a new table; code from before this migration keeps working.

-- Soft delete: the row stays (its SKU stays taken, reservations of existing orders still
-- settle against it) but the product is hidden and no longer reservable.
ALTER TABLE products ADD COLUMN deleted_at TIMESTAMPTZ;

-- Every manual stock change, who made it and why.
CREATE TABLE stock_adjustments (
    id          UUID PRIMARY KEY,
    product_id  UUID NOT NULL REFERENCES products (id),
    delta       BIGINT NOT NULL CHECK (delta <> 0),
    reason      TEXT NOT NULL CHECK (reason IN ('restock', 'damaged', 'correction', 'return')),
    note        TEXT CHECK (char_length(note) <= 500),
    actor       UUID NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX stock_adjustments_product_id_created_at ON stock_adjustments (product_id, created_at);
