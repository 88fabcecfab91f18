DROP TABLE login_attempts;
DROP TABLE order_access_tokens;
DROP INDEX orders_open_by_guest;
DROP INDEX orders_open_by_owner;
ALTER TABLE orders DROP COLUMN guest_client;
