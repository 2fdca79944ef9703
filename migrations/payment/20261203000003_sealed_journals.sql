-- A journal transaction is sealed when the database transaction that posted it commits: entries
-- may only be added by that same database transaction. Without this, a later balanced pair of
-- entries could be appended to a posted journal (the balance check alone would accept it).
-- `txid_current()` is the top-level transaction's id, also inside a savepoint.
ALTER TABLE ledger_transactions ADD COLUMN posted_by_txid bigint NOT NULL DEFAULT txid_current();

CREATE FUNCTION ledger_entry_in_posting_transaction() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM ledger_transactions t
        WHERE t.id = NEW.transaction_id AND t.posted_by_txid = txid_current()
    ) THEN
        RAISE EXCEPTION 'ledger transaction % is sealed: entries are posted with it, never later',
            NEW.transaction_id USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER ledger_entries_sealed BEFORE INSERT ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_in_posting_transaction();
