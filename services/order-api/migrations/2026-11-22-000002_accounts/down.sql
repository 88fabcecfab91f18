DROP INDEX orders_customer;
ALTER TABLE orders DROP COLUMN customer_phone;
ALTER TABLE orders DROP COLUMN customer_id;
DROP TABLE users;
