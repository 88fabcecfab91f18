DELETE FROM notifications WHERE kind IN ('email_verification', 'password_reset');
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('invoice', 'failure_notice', 'cancellation_notice', 'refund_notice'));
