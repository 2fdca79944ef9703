-- What inventory has done for each order, one row per order. Every saga step reads it (locked)
-- and decides from it alone, so a late, repeated or re-driven event of a finished order does
-- nothing: a failed reservation and a cancel that found nothing held leave a record too, which
-- the reservation rows alone could not (a failed reservation writes none).
CREATE TABLE inventory_orders (
    order_id uuid PRIMARY KEY,
    -- reserved → committed → released (cancel after payment: units restocked),
    -- reserved → released, failed (final), or released straight away (cancelled before any hold;
    -- a later OrderCreated for it reserves nothing).
    state text NOT NULL
        CHECK (state IN ('reserved', 'failed', 'released', 'committed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Orders handled before this table existed: their state follows from their reservations.
INSERT INTO inventory_orders (order_id, state)
SELECT order_id,
       CASE
           WHEN bool_or(status = 'held') THEN 'reserved'
           WHEN bool_or(status = 'committed') THEN 'committed'
           ELSE 'released'
       END
FROM reservations
GROUP BY order_id;
