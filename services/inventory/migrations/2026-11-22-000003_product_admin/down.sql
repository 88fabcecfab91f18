DROP TABLE stock_adjustments;
ALTER TABLE products DROP COLUMN deleted_at;
