-- Expand only: a new table; code from before this migration keeps working.

-- A product's images, in display order. The bytes live in the object store (local directory
-- or S3) under products/<product_id>/<id>/{original,thumbnail}.<ext>; a row exists only once
-- both objects are stored, and is deleted before they are.
CREATE TABLE product_images (
    id                  UUID PRIMARY KEY,
    product_id          UUID NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    position            INTEGER NOT NULL CHECK (position >= 0),
    content_type        TEXT NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp')),
    width               INTEGER NOT NULL CHECK (width > 0),
    height              INTEGER NOT NULL CHECK (height > 0),
    byte_size           BIGINT NOT NULL CHECK (byte_size > 0),
    thumbnail_byte_size BIGINT NOT NULL CHECK (thumbnail_byte_size > 0),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Checked at commit, so a reorder may pass through duplicate positions.
    CONSTRAINT product_images_position UNIQUE (product_id, position) DEFERRABLE INITIALLY DEFERRED
);
