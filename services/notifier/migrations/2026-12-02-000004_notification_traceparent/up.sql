-- The trace of the event that asked for the notification, so sending it continues that trace.
ALTER TABLE notifications ADD COLUMN traceparent text;
