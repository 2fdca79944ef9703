-- The order service's schema (contract §6, issue 9). The state machine lives in the code and, as a
-- backstop, in these constraints: a status outside the machine, a cancelled order without a reason,
-- a deadline on an order that is no longer waiting for payment, a line whose total is not its price
-- times its quantity, or an order whose total is not the sum of its lines cannot be stored.

CREATE TABLE orders (
    id               uuid PRIMARY KEY,
    buyer_id         uuid NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
        CONSTRAINT orders_status_check CHECK (status IN
            ('pending', 'awaiting_payment', 'confirmed', 'shipped', 'delivered', 'cancelled')),
    payment_status   text NOT NULL DEFAULT 'none'
        CONSTRAINT orders_payment_status_check CHECK (payment_status IN
            ('none', 'authorized', 'captured', 'voided', 'refunded', 'failed')),
    currency         text NOT NULL CONSTRAINT orders_currency_check CHECK (currency ~ '^[A-Z]{3}$'),
    total_amount     numeric(20, 4) NOT NULL CONSTRAINT orders_total_check CHECK (total_amount >= 0),
    shipping_address jsonb NOT NULL,
    payment_method   text NOT NULL,
    cancel_reason    text CONSTRAINT orders_cancel_reason_check CHECK (cancel_reason IN
            ('buyer_requested', 'payment_timeout', 'inventory_unavailable', 'payment_failed',
             'capture_failed', 'admin_cancelled')),
    -- The buyer's or admin's free text when cancelling (a note; the event carries the reason).
    cancel_note      text CONSTRAINT orders_cancel_note_check CHECK (char_length(cancel_note) <= 500),
    -- When an unpaid order is cancelled (`payment_timeout`); cleared when it leaves the unpaid states.
    deadline_at      timestamptz,
    -- Placement idempotency (per buyer): the key and a digest of the normalised request.
    idempotency_key  text NOT NULL
        CONSTRAINT orders_idempotency_key_check CHECK (char_length(idempotency_key) BETWEEN 1 AND 255),
    request_digest   bytea NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- Concurrent placements with one key make one order: the loser's INSERT finds this.
    CONSTRAINT orders_buyer_idempotency_key UNIQUE (buyer_id, idempotency_key),
    CONSTRAINT orders_cancelled_has_reason CHECK ((status = 'cancelled') = (cancel_reason IS NOT NULL)),
    CONSTRAINT orders_deadline_only_unpaid
        CHECK (deadline_at IS NULL OR status IN ('pending', 'awaiting_payment'))
);

-- A buyer's orders, newest first (ids are UUIDv7, so id order is creation order).
CREATE INDEX orders_buyer_idx ON orders (buyer_id, id DESC);
-- The payment-deadline sweeper's question: "which unpaid orders are due".
CREATE INDEX orders_deadline_idx ON orders (deadline_at) WHERE deadline_at IS NOT NULL;

CREATE TABLE order_items (
    order_id        uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no         integer NOT NULL CONSTRAINT order_items_line_no_check CHECK (line_no BETWEEN 1 AND 50),
    sku_id          uuid NOT NULL,
    product_id      uuid NOT NULL,
    product_name    text NOT NULL,
    seller_id       uuid NOT NULL,
    quantity        integer NOT NULL CONSTRAINT order_items_quantity_check CHECK (quantity BETWEEN 1 AND 99),
    unit_price      numeric(20, 4) NOT NULL CONSTRAINT order_items_unit_price_check CHECK (unit_price >= 0),
    line_total      numeric(20, 4) NOT NULL,
    shipped_at      timestamptz,
    tracking_number text CONSTRAINT order_items_tracking_check CHECK (char_length(tracking_number) <= 100),
    PRIMARY KEY (order_id, line_no),
    -- Lines of one SKU are merged at placement.
    CONSTRAINT order_items_one_line_per_sku UNIQUE (order_id, sku_id),
    CONSTRAINT order_items_line_total_check CHECK (line_total = unit_price * quantity)
);

-- A seller's orders (`GET /orders/seller/me`) and the seller check of `GET /orders/{id}`.
CREATE INDEX order_items_seller_idx ON order_items (seller_id, order_id DESC);

-- The order's total is the sum of its lines. Checked when the placing transaction commits (the
-- order row is inserted before its lines), so no statement can leave a total that disagrees.
CREATE FUNCTION orders_check_total() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    o uuid := COALESCE(NEW.order_id, OLD.order_id);
    lines numeric;
    total numeric;
BEGIN
    SELECT COALESCE(sum(line_total), 0) INTO lines FROM order_items WHERE order_id = o;
    SELECT total_amount INTO total FROM orders WHERE id = o;
    IF total IS NOT NULL AND total <> lines THEN
        RAISE EXCEPTION 'order % total % is not the sum of its lines %', o, total, lines
            USING ERRCODE = 'check_violation', CONSTRAINT = 'orders_total_is_sum_of_lines';
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER order_items_total AFTER INSERT OR UPDATE OR DELETE ON order_items
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION orders_check_total();

CREATE FUNCTION orders_check_total_of_order() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    lines numeric;
BEGIN
    SELECT COALESCE(sum(line_total), 0) INTO lines FROM order_items WHERE order_id = NEW.id;
    IF NEW.total_amount <> lines THEN
        RAISE EXCEPTION 'order % total % is not the sum of its lines %', NEW.id, NEW.total_amount, lines
            USING ERRCODE = 'check_violation', CONSTRAINT = 'orders_total_is_sum_of_lines';
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER orders_total AFTER INSERT OR UPDATE OF total_amount ON orders
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION orders_check_total_of_order();

-- Everything that happened to an order, in order: every transition and every event that arrived
-- for a state that no longer accepted it (`applied = false`: recorded and ignored).
CREATE TABLE order_status_history (
    id             bigserial PRIMARY KEY,
    order_id       uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    -- The order's status and payment status after this entry.
    status         text NOT NULL CONSTRAINT order_status_history_status_check CHECK (status IN
            ('pending', 'awaiting_payment', 'confirmed', 'shipped', 'delivered', 'cancelled')),
    payment_status text NOT NULL,
    -- What caused it: `placed`, `cancel`, `ship`, `deliver`, `deadline`, or an event type.
    trigger        text NOT NULL,
    reason         text,
    applied        boolean NOT NULL,
    details        jsonb,
    at             timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX order_status_history_order_idx ON order_status_history (order_id, id);
