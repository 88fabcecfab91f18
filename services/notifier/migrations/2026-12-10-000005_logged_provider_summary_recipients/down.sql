DROP TABLE summary_deliveries;
ALTER TABLE notification_attempts DROP CONSTRAINT notification_attempts_outcome_check;
ALTER TABLE notification_attempts ADD CONSTRAINT notification_attempts_outcome_check
    CHECK (outcome IN ('sent', 'retry', 'failed'));
ALTER TABLE notification_attempts DROP COLUMN provider;
UPDATE notifications SET status = 'sent' WHERE status = 'logged';
ALTER TABLE notifications DROP CONSTRAINT notifications_status_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_status_check
    CHECK (status IN ('pending', 'sent', 'failed'));
ALTER TABLE notifications DROP COLUMN provider;
