-- Verified accounts and password reset (issue 13). Expand only.
-- Accounts from before verification existed have been ordering all along: they count as
-- verified, so turning REQUIRE_VERIFIED_EMAIL on locks nobody out.
ALTER TABLE users ADD COLUMN email_verified_at TIMESTAMPTZ;
UPDATE users SET email_verified_at = created_at;

-- Single-use, expiring secrets sent by email. Only the SHA-256 of each 256-bit token is kept;
-- `id` (not the token) travels in the event as the notifier's once-only key. A token is spent
-- by one conditional UPDATE (unused, unexpired), so two clicks cannot both succeed.
CREATE TABLE account_tokens (
    id          UUID PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL CHECK (purpose IN ('email_verification', 'password_reset')),
    token_hash  BYTEA NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
CREATE INDEX account_tokens_user ON account_tokens (user_id, purpose);
