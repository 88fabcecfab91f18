-- The attempt log is pruned by age (`retention`, WEBHOOK_ATTEMPT_RETENTION_DAYS): this index
-- finds the oldest rows without scanning the table. Built CONCURRENTLY (so outside a
-- transaction, see metadata.toml): deliveries keep logging attempts while it builds.
CREATE INDEX CONCURRENTLY IF NOT EXISTS attempts_attempted_at ON attempts (attempted_at);
