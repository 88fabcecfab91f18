-- What was given back to the customer for the order (payment.refunded adds to it), so an order
-- that ended cancelled or failed after money moved shows the money went back. Each refund or
-- void also gets a `refunded` / `voided` line in the status history (not an order status: the
-- order keeps the status that caused it).
ALTER TABLE orders ADD COLUMN refunded_amount NUMERIC(14, 2) NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0);
