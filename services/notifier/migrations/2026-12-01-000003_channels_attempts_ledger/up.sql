-- Issue 5: HTML alternative, SMS channel, a record per attempt, the order ledger for the daily
-- sales summary and the days it was sent. Expand only: existing rows stay valid.
ALTER TABLE notifications ADD COLUMN html_body TEXT;
ALTER TABLE notifications ADD CONSTRAINT notifications_channel_check CHECK (channel IN ('email', 'sms'));
CREATE INDEX notifications_created ON notifications (created_at);

CREATE TABLE notification_attempts (
    id               UUID PRIMARY KEY,
    notification_id  UUID NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    attempted_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    outcome          TEXT NOT NULL CHECK (outcome IN ('sent', 'retry', 'failed')),
    error            TEXT
);
CREATE INDEX notification_attempts_by_notification ON notification_attempts (notification_id, attempted_at);

-- What notifier learned about each order from the events it receives: the customer (a refund
-- notice names nobody) and the outcome, for the daily summary. No other service's schema is read.
CREATE TABLE order_ledger (
    order_id         UUID PRIMARY KEY,
    customer_name    TEXT NOT NULL,
    customer_email   TEXT NOT NULL,
    customer_phone   TEXT,
    currency         TEXT,
    total_amount     NUMERIC(14, 2),
    confirmed_at     TIMESTAMPTZ,
    failed_at        TIMESTAMPTZ,
    failure_reason   TEXT,
    cancelled_at     TIMESTAMPTZ
);
CREATE INDEX order_ledger_confirmed ON order_ledger (confirmed_at);
CREATE INDEX order_ledger_failed ON order_ledger (failed_at);
CREATE INDEX order_ledger_cancelled ON order_ledger (cancelled_at);

-- One row per summarised day, written in the transaction that sends it: a day goes out once.
CREATE TABLE summaries (
    day         DATE PRIMARY KEY,
    sent_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    recipients  TEXT NOT NULL
);
