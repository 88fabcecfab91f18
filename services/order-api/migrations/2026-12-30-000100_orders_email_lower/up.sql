-- Guest orders keep the email as it was typed (`Ada@Example.com`); the admin filter compares
-- `lower()` of both sides, so it finds them whatever the case. The index serves that filter,
-- with `id` for its cursor order. Built CONCURRENTLY (so outside a transaction, see
-- metadata.toml): order intake keeps writing while it builds on a large table.
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_email_lower ON orders (lower(customer_email), id);
