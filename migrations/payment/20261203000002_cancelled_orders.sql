-- Orders cancelled before payment heard of them. Normally `OrderCancelled` follows the order's
-- `PaymentRequested` on one partition, but a request that went to the dead letters and is
-- re-driven later arrives after the cancel: this row makes that late request fail
-- (`order_cancelled`) instead of authorizing money for a cancelled order.
CREATE TABLE cancelled_orders (
    order_id uuid PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now()
);
