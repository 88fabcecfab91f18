-- The account that placed the order (from payment.requested; NULL for a guest order and for
-- payments made before it was recorded): only that customer or an admin may see the payment or
-- act on it at the simulator, even when this service is reached around the gateway.
ALTER TABLE payments ADD COLUMN customer_id UUID;
