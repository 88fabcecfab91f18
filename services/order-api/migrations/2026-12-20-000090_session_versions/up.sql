-- Token revocation. Every token carries the account's session version at issue (`sv`); raising
-- it refuses every older token at the gateway (logout, password change, role change).
-- `sessions_revoked_at` lets the gateway load only revocations young enough to matter (older
-- ones have outlived every token they could refuse).
ALTER TABLE users ADD COLUMN session_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN sessions_revoked_at TIMESTAMPTZ;
CREATE INDEX users_sessions_revoked ON users (sessions_revoked_at) WHERE sessions_revoked_at IS NOT NULL;

-- A new password or role revokes the account's tokens whatever changed it: the API, the CLI
-- or an operator's UPDATE by hand.
CREATE FUNCTION users_revoke_sessions_on_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.password_hash IS DISTINCT FROM OLD.password_hash OR NEW.role IS DISTINCT FROM OLD.role THEN
        NEW.session_version := GREATEST(NEW.session_version, OLD.session_version + 1);
        NEW.sessions_revoked_at := now();
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER users_revoke_sessions_on_change BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION users_revoke_sessions_on_change();
