ALTER TABLE notifications DROP COLUMN traceparent;
