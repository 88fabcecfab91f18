DROP TRIGGER users_revoke_sessions_on_change ON users;
DROP FUNCTION users_revoke_sessions_on_change();
DROP INDEX users_sessions_revoked;
ALTER TABLE users DROP COLUMN sessions_revoked_at;
ALTER TABLE users DROP COLUMN session_version;
