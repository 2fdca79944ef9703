-- An email change waits here until the new address is verified: until then `email` (the login
-- and password-reset address) stays the old, proven one, so a stolen access token cannot move
-- the account to an attacker's address. No unique index: claiming an address must not squat it;
-- whoever verifies first wins at users_email_key.
ALTER TABLE users ADD COLUMN pending_email text;
-- Stored lower-cased like `email`, so comparisons and the later move into `email` stay exact.
ALTER TABLE users ADD CONSTRAINT users_pending_email_lower_check
    CHECK (pending_email = lower(pending_email));
