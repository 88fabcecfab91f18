ALTER TABLE payments DROP COLUMN customer_id;
