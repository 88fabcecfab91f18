ALTER TABLE orders DROP COLUMN refunded_amount;
