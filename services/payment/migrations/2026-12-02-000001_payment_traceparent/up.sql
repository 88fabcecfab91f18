-- The trace of the payment request, so the worker's provider calls and events continue it.
ALTER TABLE payments ADD COLUMN traceparent text;
