-- Guest orders: the client address that placed them (for the per-client limit on open, unpaid
-- orders) and the hashes of their access tokens. Expand only: old guest orders have neither,
-- and are readable by an admin only.
ALTER TABLE orders ADD COLUMN guest_client TEXT;
CREATE INDEX orders_open_by_owner ON orders (customer_id) WHERE status IN ('pending', 'processing');
CREATE INDEX orders_open_by_guest ON orders (guest_client) WHERE status IN ('pending', 'processing');

-- SHA-256 of each token (a token is 256 random bits, so a fast hash is enough): `created` is
-- returned once by POST /orders, `invoice` goes out in the invoice link.
CREATE TABLE order_access_tokens (
    order_id    UUID NOT NULL REFERENCES orders (id),
    purpose     TEXT NOT NULL CHECK (purpose IN ('created', 'invoice')),
    token_hash  BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, purpose)
);

-- Login backoff, shared by every gateway replica: `account:<email>` or `client:<address>`.
CREATE TABLE login_attempts (
    subject          TEXT PRIMARY KEY,
    failures         INT NOT NULL,
    last_attempt_at  TIMESTAMPTZ NOT NULL,
    blocked_until    TIMESTAMPTZ NOT NULL
);
CREATE INDEX login_attempts_last ON login_attempts (last_attempt_at);
