DROP TABLE attempts;
DROP INDEX deliveries_by_endpoint;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_endpoint_id_fkey;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_endpoint_id_fkey
    FOREIGN KEY (endpoint_id) REFERENCES endpoints (id);
ALTER TABLE deliveries DROP COLUMN schedule_base;
ALTER TABLE endpoints DROP COLUMN disabled_reason, DROP COLUMN failing_since,
    DROP COLUMN previous_secret_expires_at, DROP COLUMN previous_secret, DROP COLUMN headers;
