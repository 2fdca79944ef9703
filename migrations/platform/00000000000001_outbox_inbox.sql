-- Platform tables every event-producing or event-consuming service carries in its own database:
-- the transactional outbox and the consumer inbox (SPEC §9). Merged into each service's migrator
-- by `shared::db::service_migrator`, with versions below any service migration.

-- Events waiting to be published, written in the same transaction as the change they announce.
CREATE TABLE outbox (
    -- Allocation order. Writers lock the aggregate they change before inserting, so for one
    -- aggregate this is also commit order; the relay publishes per aggregate in this order.
    id              bigserial PRIMARY KEY,
    event_id        uuid NOT NULL,
    topic           text NOT NULL,
    aggregate_id    text NOT NULL,
    event_type      text NOT NULL,
    envelope        jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- Publishing state: a relay claims a row for a lease; a failed attempt backs off.
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    claimed_by      uuid,
    claimed_until   timestamptz,
    last_error      text,
    published_at    timestamptz,
    CONSTRAINT outbox_event_id_key UNIQUE (event_id),
    CONSTRAINT outbox_attempts_check CHECK (attempts >= 0)
);

-- The relay's questions: "what is pending, oldest first" and "is there an earlier pending event of
-- this aggregate". Both only look at unpublished rows, which stay few.
CREATE INDEX outbox_pending_idx ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_pending_aggregate_idx ON outbox (aggregate_id, id) WHERE published_at IS NULL;
-- Cleanup of published rows.
CREATE INDEX outbox_published_at_idx ON outbox (published_at) WHERE published_at IS NOT NULL;

-- Wake relays at once instead of at their next poll. Per statement, so a bulk insert wakes once.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_inserted', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER outbox_inserted AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- Events a consumer group has handled. The row is written in the handler's own transaction, so an
-- event's effects and its "handled" mark commit together: a redelivered event is a no-op.
CREATE TABLE inbox (
    event_id       uuid NOT NULL,
    consumer_group text NOT NULL,
    event_type     text NOT NULL,
    handled_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, consumer_group)
);
CREATE INDEX inbox_handled_at_idx ON inbox (handled_at);
