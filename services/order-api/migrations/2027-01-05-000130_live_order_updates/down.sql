DROP TRIGGER IF EXISTS order_status_notify ON order_status_history;
DROP FUNCTION IF EXISTS order_status_notify();
DROP INDEX IF EXISTS order_status_history_stream;
ALTER TABLE order_status_history DROP COLUMN IF EXISTS tx;
