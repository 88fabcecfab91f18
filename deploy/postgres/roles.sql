-- Cluster-wide, idempotent: one login role per service. Each role's search_path is its own
-- schema, so services use unqualified table names and cannot see each other's tables.
-- Passwords are set outside the repository (ALTER ROLE ... PASSWORD from your secret store);
-- the local default set-up uses trust authentication on 127.0.0.1.
SELECT pg_advisory_xact_lock(727274);
DO $$
DECLARE
    service text;
BEGIN
    FOREACH service IN ARRAY ARRAY['order_api', 'inventory', 'payment', 'notifier', 'webhooks'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = service) THEN
            EXECUTE format('CREATE ROLE %I LOGIN', service);
        END IF;
        EXECUTE format('ALTER ROLE %I SET search_path = %I', service, service);
    END LOOP;
END
$$;
