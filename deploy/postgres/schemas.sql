-- Per database, idempotent: each service's schema, owned by its role and by nobody else.
DO $$
DECLARE
    service text;
BEGIN
    FOREACH service IN ARRAY ARRAY['order_api', 'inventory', 'payment', 'notifier', 'webhooks'] LOOP
        EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', service, service);
    END LOOP;
END
$$;
-- Nothing belongs in public; no role may create objects there.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
