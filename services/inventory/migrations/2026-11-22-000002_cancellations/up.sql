-- Expand only. `returned`: a committed reservation whose order was cancelled after
-- confirmation; its units went back on hand.
ALTER TABLE reservations DROP CONSTRAINT reservations_status_check;
ALTER TABLE reservations ADD CONSTRAINT reservations_status_check
    CHECK (status IN ('reserved', 'committed', 'released', 'returned'));

-- Orders cancelled before we saw them: events can arrive out of order (a retried
-- order.created after its order.cancelled), and a cancelled order must never reserve stock.
CREATE TABLE cancelled_orders (
    order_id      UUID PRIMARY KEY,
    cancelled_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
