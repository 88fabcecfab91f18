-- Issue 13: account messages (email verification, password reset). Expand only.
-- They are about an account, not an order: `order_id` then holds the token id from the event
-- (never the token), the key that makes each message go out once however often the event is
-- redelivered or replayed.
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('invoice', 'failure_notice', 'cancellation_notice', 'refund_notice',
                    'email_verification', 'password_reset'));
