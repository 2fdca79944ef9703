-- Identity: users, login sessions (refresh-token families) and single-use mail tokens.

CREATE TABLE users (
    id                uuid PRIMARY KEY,                 -- UUIDv7 made by the service
    username          text NOT NULL,
    email             text NOT NULL,
    phone             text,
    password_hash     text NOT NULL,                    -- argon2id PHC string
    role              text NOT NULL,
    status            text NOT NULL DEFAULT 'active',
    email_verified_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    -- The role set is closed; an unknown role can never be stored, whatever the code does.
    CONSTRAINT users_role_check CHECK (role IN ('BUYER', 'SELLER', 'ADMIN')),
    -- 'deleted' users keep their row (orders point at it) but lose their personal data.
    CONSTRAINT users_status_check CHECK (status IN ('active', 'deactivated', 'deleted')),
    -- Emails are normalised to lower case before they are stored; uniqueness relies on it.
    CONSTRAINT users_email_lower_check CHECK (email = lower(email)),
    CONSTRAINT users_username_length_check CHECK (char_length(username) BETWEEN 3 AND 64)
);

-- Usernames are unique regardless of case ("Alice" and "alice" are one account), and logins look
-- them up case-insensitively through the same index. Racing registrations meet here, not in code.
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (email);

-- One row per login: the refresh-token family. Revoking the session revokes every token in it.
CREATE TABLE sessions (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    revoke_reason text
);
CREATE INDEX sessions_user_active_idx ON sessions (user_id) WHERE revoked_at IS NULL;

-- Refresh tokens are opaque; only their SHA-256 is stored. A token is used once: rotation marks it
-- used and issues its successor in the same session. Presenting a used token again is theft or a
-- replay, and revokes the whole session.
CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES sessions (id),
    token_hash  bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    CONSTRAINT refresh_tokens_token_hash_key UNIQUE (token_hash),
    CONSTRAINT refresh_tokens_hash_length_check CHECK (octet_length(token_hash) = 32)
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

-- Email verification and password reset tokens: single use, expiring, stored hashed.
CREATE TABLE user_tokens (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id),
    purpose     text NOT NULL,
    -- The address the token was sent to: verifying proves ownership of that address only, so a
    -- token mailed before an email change cannot verify the new one.
    email       text NOT NULL,
    token_hash  bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    CONSTRAINT user_tokens_purpose_check CHECK (purpose IN ('verify_email', 'reset_password')),
    CONSTRAINT user_tokens_token_hash_key UNIQUE (token_hash),
    CONSTRAINT user_tokens_hash_length_check CHECK (octet_length(token_hash) = 32)
);
CREATE INDEX user_tokens_user_purpose_idx ON user_tokens (user_id, purpose) WHERE used_at IS NULL;
