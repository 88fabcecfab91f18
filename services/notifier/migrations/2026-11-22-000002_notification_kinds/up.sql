-- Expand only: the new kinds are added; old rows stay valid.
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('invoice', 'failure_notice', 'cancellation_notice', 'refund_notice'));
