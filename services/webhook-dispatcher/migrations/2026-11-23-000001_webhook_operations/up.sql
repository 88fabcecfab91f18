-- Extra headers sent with every delivery, as a JSON object of strings.
ALTER TABLE endpoints ADD COLUMN headers JSONB NOT NULL DEFAULT '{}';
-- After a rotation the old secret keeps signing (next to the new one) until it expires.
ALTER TABLE endpoints ADD COLUMN previous_secret TEXT;
ALTER TABLE endpoints ADD COLUMN previous_secret_expires_at TIMESTAMPTZ;
-- When the current run of failed attempts began (NULL after any success); an endpoint failing
-- for long enough is disabled.
ALTER TABLE endpoints ADD COLUMN failing_since TIMESTAMPTZ;
ALTER TABLE endpoints ADD COLUMN disabled_reason TEXT CHECK (disabled_reason IN ('gone', 'failing'));

-- Attempts made before the current retry schedule began: a resend or a recovery starts the
-- schedule again without forgetting earlier attempts.
ALTER TABLE deliveries ADD COLUMN schedule_base INT NOT NULL DEFAULT 0 CHECK (schedule_base >= 0);

-- Deleting an endpoint deletes its delivery log.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_endpoint_id_fkey;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_endpoint_id_fkey
    FOREIGN KEY (endpoint_id) REFERENCES endpoints (id) ON DELETE CASCADE;
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_id, id);

-- Every attempt, as the integrator needs it to debug their receiver.
CREATE TABLE attempts (
    id             UUID PRIMARY KEY,
    delivery_id    UUID NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempted_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    status_code    INT,
    duration_ms    INT NOT NULL CHECK (duration_ms >= 0),
    -- The first 4 KiB of the answer, decoded lossily as UTF-8.
    response_body  TEXT,
    error          TEXT
);

CREATE INDEX attempts_by_delivery ON attempts (delivery_id, id);
