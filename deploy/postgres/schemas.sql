-- Per database, idempotent: each service's schema, owned by `<service>_owner` (migrations), and
-- its runtime role `<service>` allowed to read and write the rows but not to change the schema
-- (roles.sql explains the two roles). Run as a superuser after roles.sql.
DO $$
DECLARE
    service text;
    owner text;
BEGIN
    FOREACH service IN ARRAY ARRAY['order_api', 'inventory', 'payment', 'notifier', 'webhooks'] LOOP
        owner := service || '_owner';
        EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', service, owner);
        -- A database set up before the split has the schema and its tables owned by the
        -- runtime role: hand them to the owner (no-op otherwise).
        EXECUTE format('REASSIGN OWNED BY %I TO %I', service, owner);
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', service, owner);
        EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC, %I', service, service);
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', service, service);
        -- What migrations create from now on: rows and sequences only.
        EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I '
            'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I', owner, service, service);
        EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA %I '
            'GRANT USAGE, SELECT ON SEQUENCES TO %I', owner, service, service);
        -- What exists already (a database migrated before the split).
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I',
            service, service);
        EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', service, service);
        -- The migration history (diesel's own definition): the runtime role reads it, to see
        -- that nothing is pending at start, but cannot forge or erase an entry.
        EXECUTE format('CREATE TABLE IF NOT EXISTS %I.__diesel_schema_migrations ('
            'version VARCHAR(50) PRIMARY KEY NOT NULL, '
            'run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)', service);
        EXECUTE format('ALTER TABLE %I.__diesel_schema_migrations OWNER TO %I', service, owner);
        EXECUTE format('REVOKE ALL ON %I.__diesel_schema_migrations FROM %I', service, service);
        EXECUTE format('GRANT SELECT ON %I.__diesel_schema_migrations TO %I', service, service);
    END LOOP;
END
$$;
-- Nothing belongs in public; no role may create objects there.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
