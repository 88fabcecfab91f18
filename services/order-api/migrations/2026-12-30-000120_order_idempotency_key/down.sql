DROP INDEX IF EXISTS orders_idempotency_key;
ALTER TABLE orders DROP COLUMN IF EXISTS idempotency_scope, DROP COLUMN IF EXISTS idempotency_key;
