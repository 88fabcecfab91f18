-- Cluster-wide, idempotent: two login roles per service.
--   <service>        the runtime role the service connects as (DATABASE_URL): it may read and
--                    write its tables (SELECT, INSERT, UPDATE, DELETE, sequences) and nothing
--                    else, so an SQL injection or a stolen runtime password cannot ALTER, DROP
--                    or TRUNCATE a table;
--   <service>_owner  owns the schema and every table in it; only migrations connect as it
--                    (`<service> migrate`: the compose `<service>-migrate` service, the
--                    Kubernetes Job `<service>-migrate`).
-- schemas.sql gives the runtime role its privileges, per database. Both roles' search_path is
-- the service's schema, so services and migrations use unqualified table names and cannot see
-- each other's tables. Passwords are set outside the repository (ALTER ROLE ... PASSWORD from
-- your secret store, one per role; deploy/postgres/docker-init.sh for compose); the local
-- default set-up uses trust authentication on 127.0.0.1, where a service applies its pending
-- migrations at start as `<role>_owner` (crates/platform/src/db.rs).
SELECT pg_advisory_xact_lock(727274);
DO $$
DECLARE
    service text;
    role text;
BEGIN
    FOREACH service IN ARRAY ARRAY['order_api', 'inventory', 'payment', 'notifier', 'webhooks'] LOOP
        FOREACH role IN ARRAY ARRAY[service, service || '_owner'] LOOP
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role) THEN
                EXECUTE format('CREATE ROLE %I LOGIN', role);
            END IF;
            -- Neither may create roles or databases, nor act as the other.
            EXECUTE format('ALTER ROLE %I NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS', role);
            EXECUTE format('ALTER ROLE %I SET search_path = %I', role, service);
        END LOOP;
    END LOOP;
END
$$;
