DROP TABLE sim_refunds;
DROP TABLE sim_intents;
DROP TABLE order_cancellations;
DROP TABLE refunds;
DROP TABLE payment_provider_events;
DROP TABLE payment_attempts;
DROP TABLE payment_transitions;
DROP INDEX payments_provider_ref;
DROP INDEX payments_open_expiry;
DROP INDEX payments_due;
ALTER TABLE payments DROP COLUMN provider_ref, DROP COLUMN attempt, DROP COLUMN confirmed,
    DROP COLUMN retries, DROP COLUMN next_attempt_at, DROP COLUMN last_error,
    DROP COLUMN decline_code, DROP COLUMN expires_at, DROP COLUMN refunded_amount,
    DROP COLUMN cancel_requested;
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check CHECK (status IN ('succeeded', 'failed'));
