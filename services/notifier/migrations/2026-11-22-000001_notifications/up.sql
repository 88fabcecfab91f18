CREATE TABLE notifications (
    id               UUID PRIMARY KEY,
    order_id         UUID NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('invoice', 'failure_notice')),
    channel          TEXT NOT NULL DEFAULT 'email',
    recipient        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body             TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         INT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- Also the sender's lease: a claimed row is pushed a minute ahead, so a sender that dies
    -- mid-send gives its rows back instead of losing them.
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at          TIMESTAMPTZ,
    -- One email per order, kind and channel, however often the triggering event is redelivered.
    UNIQUE (order_id, kind, channel)
);

CREATE INDEX notifications_due ON notifications (status, next_attempt_at);
