DROP TABLE summaries;
DROP TABLE order_ledger;
DROP TABLE notification_attempts;
DROP INDEX notifications_created;
ALTER TABLE notifications DROP CONSTRAINT notifications_channel_check;
ALTER TABLE notifications DROP COLUMN html_body;
