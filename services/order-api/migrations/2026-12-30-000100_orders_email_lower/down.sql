DROP INDEX CONCURRENTLY IF EXISTS orders_customer_email_lower;
