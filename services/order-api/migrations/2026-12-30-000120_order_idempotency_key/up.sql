-- An order remembers the (caller, Idempotency-Key) that created it, in the same transaction as
-- the order itself. A retry that takes over a key whose first request died after its commit
-- (a kill -9 between the order's commit and the stored answer) finds that order instead of
-- placing a second one; the unique index makes two orders for one key impossible.
ALTER TABLE orders ADD COLUMN idempotency_scope text, ADD COLUMN idempotency_key text;
CREATE UNIQUE INDEX orders_idempotency_key ON orders (idempotency_scope, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
