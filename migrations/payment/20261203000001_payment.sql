-- The payment service's schema (contract §8, issue 10): payments and their gateway attempts, the
-- double-entry ledger, and the mock gateway's own state (a stand-in for the provider's side).

-- One payment per order. `pending_op` is the gateway call still owed (authorize, capture, void,
-- refund), due at `next_attempt_at`; a worker claims it for `claimed_until` (a lease) and the
-- call's outcome is recorded in a second transaction (docs/adr/013).
CREATE TABLE payments (
    id               uuid PRIMARY KEY,
    order_id         uuid NOT NULL CONSTRAINT payments_one_per_order UNIQUE,
    buyer_id         uuid NOT NULL,
    status           text NOT NULL DEFAULT 'requested'
        CONSTRAINT payments_status_check CHECK (status IN
            ('requested', 'authorized', 'captured', 'refunded', 'voided', 'failed', 'capture_failed')),
    amount           numeric(20, 4) NOT NULL CONSTRAINT payments_amount_check CHECK (amount > 0),
    currency         text NOT NULL CONSTRAINT payments_currency_check CHECK (currency ~ '^[A-Z]{3}$'),
    payment_method   text NOT NULL,
    -- [{seller_id, amount}] as the order asked; their sum is the amount.
    seller_amounts   jsonb NOT NULL,
    gateway_reference text,
    failure_reason   text,
    -- The order was cancelled: whatever is held or captured must be given back.
    cancel_requested boolean NOT NULL DEFAULT false,
    pending_op       text CONSTRAINT payments_pending_op_check CHECK (pending_op IN
            ('authorize', 'capture', 'void', 'refund')),
    -- Gateway calls started for `pending_op` (counted when claimed, before the call).
    op_attempts      integer NOT NULL DEFAULT 0 CONSTRAINT payments_op_attempts_check CHECK (op_attempts >= 0),
    next_attempt_at  timestamptz,
    claimed_until    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT payments_due_when_pending CHECK ((pending_op IS NULL) = (next_attempt_at IS NULL))
);

-- The worker's question: "which gateway calls are due".
CREATE INDEX payments_due_idx ON payments (next_attempt_at) WHERE pending_op IS NOT NULL;

-- Every call made to the gateway, whatever came of it.
CREATE TABLE payment_attempts (
    id                bigserial PRIMARY KEY,
    payment_id        uuid NOT NULL REFERENCES payments (id),
    operation         text NOT NULL CHECK (operation IN ('authorize', 'capture', 'void', 'refund')),
    idempotency_key   text NOT NULL,
    outcome           text NOT NULL CHECK (outcome IN ('succeeded', 'declined', 'retryable_error')),
    gateway_reference text,
    error             text,
    latency_ms        integer NOT NULL CHECK (latency_ms >= 0),
    at                timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX payment_attempts_payment_idx ON payment_attempts (payment_id, id);

-- ---- The ledger --------------------------------------------------------------------------------

CREATE TABLE ledger_accounts (
    id             bigserial PRIMARY KEY,
    code           text NOT NULL CONSTRAINT ledger_accounts_code_key UNIQUE,
    type           text NOT NULL CHECK (type IN ('asset', 'liability', 'revenue', 'expense')),
    normal_balance text NOT NULL CHECK (normal_balance IN ('debit', 'credit')),
    currency       text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- Set on a seller's payable account.
    seller_id      uuid,
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- Entries reference (id, currency), so an entry's currency is its account's.
    CONSTRAINT ledger_accounts_id_currency UNIQUE (id, currency),
    CONSTRAINT ledger_accounts_normal_balance CHECK (
        normal_balance = CASE WHEN type IN ('asset', 'expense') THEN 'debit' ELSE 'credit' END)
);

CREATE TABLE ledger_transactions (
    id         uuid PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('authorization', 'capture', 'void', 'refund')),
    order_id   uuid NOT NULL,
    payment_id uuid NOT NULL REFERENCES payments (id),
    at         timestamptz NOT NULL DEFAULT now(),
    -- A payment is held, captured, voided or refunded at most once: a repeated posting fails.
    CONSTRAINT ledger_transactions_once_per_kind UNIQUE (payment_id, kind)
);

CREATE TABLE ledger_entries (
    id             bigserial PRIMARY KEY,
    transaction_id uuid NOT NULL REFERENCES ledger_transactions (id),
    account_id     bigint NOT NULL,
    direction      text NOT NULL CHECK (direction IN ('debit', 'credit')),
    amount         numeric(20, 4) NOT NULL CONSTRAINT ledger_entries_amount_positive CHECK (amount > 0),
    currency       text NOT NULL,
    FOREIGN KEY (account_id, currency) REFERENCES ledger_accounts (id, currency)
);

CREATE INDEX ledger_entries_transaction_idx ON ledger_entries (transaction_id);
CREATE INDEX ledger_entries_account_idx ON ledger_entries (account_id);

-- A journal transaction balances: at commit, it has at least two entries and its debits equal its
-- credits in every currency. Deferred, so entries can be inserted one by one.
CREATE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    -- An entry names its transaction; a transaction is its own (the record types differ).
    tx uuid := COALESCE((to_jsonb(NEW) ->> 'transaction_id')::uuid, (to_jsonb(NEW) ->> 'id')::uuid);
    n integer;
    unbalanced text;
BEGIN
    SELECT count(*) INTO n FROM ledger_entries WHERE transaction_id = tx;
    IF n < 2 THEN
        RAISE EXCEPTION 'ledger transaction % has % entries; at least two are needed', tx, n
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_transaction_balanced';
    END IF;
    SELECT string_agg(currency, ', ') INTO unbalanced FROM (
        SELECT currency
        FROM ledger_entries WHERE transaction_id = tx
        GROUP BY currency
        HAVING sum(CASE WHEN direction = 'debit' THEN amount ELSE 0 END)
            <> sum(CASE WHEN direction = 'credit' THEN amount ELSE 0 END)
    ) u;
    IF unbalanced IS NOT NULL THEN
        RAISE EXCEPTION 'ledger transaction % does not balance in %', tx, unbalanced
            USING ERRCODE = 'check_violation', CONSTRAINT = 'ledger_transaction_balanced';
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER ledger_transactions_balanced AFTER INSERT ON ledger_transactions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();
CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced();

-- The ledger is append-only: corrections are new, reversing transactions.
CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed (post a reversing transaction)',
        TG_TABLE_NAME, TG_OP USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_transactions_no_truncate BEFORE TRUNCATE ON ledger_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();

-- Balances are derived from the entries, never stored: debit-positive, and in the account's
-- normal direction.
CREATE VIEW ledger_balances AS
SELECT a.id AS account_id, a.code, a.type, a.normal_balance, a.currency, a.seller_id,
       COALESCE(sum(CASE WHEN e.direction = 'debit' THEN e.amount ELSE -e.amount END), 0) AS debit_balance,
       COALESCE(sum(CASE WHEN e.direction = 'debit' THEN e.amount ELSE 0 END), 0) AS debits,
       COALESCE(sum(CASE WHEN e.direction = 'credit' THEN e.amount ELSE 0 END), 0) AS credits
FROM ledger_accounts a LEFT JOIN ledger_entries e ON e.account_id = a.id
GROUP BY a.id;

-- ---- The mock gateway's side (what a provider would keep) --------------------------------------

-- One row per idempotency key the mock has answered for good (success or decline): a repeated
-- call with the key gets the same answer and charges nothing again.
CREATE TABLE mock_gateway_operations (
    idempotency_key text PRIMARY KEY,
    operation       text NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('succeeded', 'declined')),
    reference       text,
    decline_code    text,
    amount          numeric(20, 4),
    at              timestamptz NOT NULL DEFAULT now()
);

-- Retryable failures served so far per key (`tok_timeout` fails N times per operation).
CREATE TABLE mock_gateway_failures (
    idempotency_key text PRIMARY KEY,
    failures        integer NOT NULL
);
