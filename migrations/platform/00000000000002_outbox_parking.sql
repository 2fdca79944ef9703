-- Parking (docs/events.md): a row the relay cannot publish — its envelope does not decode, or the
-- broker refused it `max_attempts` times with an error that retrying cannot fix (record too
-- large, unknown topic) — is set aside instead of being retried forever. A parked row stays
-- unpublished, so the later events of its aggregate keep waiting behind it (per-aggregate order
-- holds); every other aggregate flows. `koupang-outbox list|retry|park` inspects and releases it.
ALTER TABLE outbox ADD COLUMN parked_at timestamptz;

-- A parked row is never published as it is: `retry` clears `parked_at` first.
ALTER TABLE outbox ADD CONSTRAINT outbox_parked_unpublished_check
    CHECK (parked_at IS NULL OR published_at IS NULL);

-- The parked-rows gauge and `koupang-outbox list`; parked rows stay few.
CREATE INDEX outbox_parked_idx ON outbox (id) WHERE parked_at IS NOT NULL;
