-- Issue 10. Expand only: existing rows stay valid.

-- A message a log-only provider accepted was not sent: it is `logged`, and every delivered or
-- logged message names the provider that took it (NULL for rows from before this migration).
ALTER TABLE notifications ADD COLUMN provider TEXT;
ALTER TABLE notifications DROP CONSTRAINT notifications_status_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_status_check
    CHECK (status IN ('pending', 'sent', 'logged', 'failed'));
ALTER TABLE notification_attempts ADD COLUMN provider TEXT;
ALTER TABLE notification_attempts DROP CONSTRAINT notification_attempts_outcome_check;
ALTER TABLE notification_attempts ADD CONSTRAINT notification_attempts_outcome_check
    CHECK (outcome IN ('sent', 'logged', 'retry', 'failed'));

-- The daily summary per recipient, each committed on its own as soon as its send is known:
-- one rejected admin address no longer rolls back (and so repeats) everyone else's email.
-- `sent` and `rejected` (a permanent SMTP answer) are final; `retrying` is tried again at the
-- next check until `attempts` reaches the job's limit, then `failed`, also final. A day's
-- `summaries` row is written once every recipient is final.
CREATE TABLE summary_deliveries (
    day           DATE NOT NULL,
    recipient     TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('sent', 'rejected', 'retrying', 'failed')),
    attempts      INT NOT NULL DEFAULT 1 CHECK (attempts >= 1),
    last_error    TEXT,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (day, recipient)
);
