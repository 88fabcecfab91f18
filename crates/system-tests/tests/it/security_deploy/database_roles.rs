//! PostgreSQL: what a service's runtime role may do on a database migrated as the services do.

use crate::deploy::read;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

/// Runs `sql` as `url`'s role; the error text when PostgreSQL refuses it.
async fn try_sql(url: &str, sql: &str) -> Result<(), String> {
    let mut conn = AsyncPgConnection::establish(url).await.map_err(|e| e.to_string())?;
    conn.batch_execute(sql).await.map_err(|e| e.to_string())
}

#[tokio::test]
async fn security_deploy_runtime_roles_read_and_write_rows_but_cannot_alter_or_drop_tables() {
    let db = testkit::TestDatabase::create().await.unwrap();
    // Migrated the way every service migrates at start: through its runtime role's pool
    // (platform::db::migrate applies them as `<role>_owner`).
    let roles = ["order_api", "inventory", "payment", "notifier", "webhooks"];
    let sources = |role: &str| {
        let own = match role {
            "order_api" => order_api::startup::MIGRATIONS,
            "inventory" => inventory::startup::MIGRATIONS,
            "payment" => payment::startup::MIGRATIONS,
            "notifier" => notifier::startup::MIGRATIONS,
            _ => webhook_dispatcher::startup::MIGRATIONS,
        };
        vec![messaging::MIGRATIONS, own]
    };
    for role in roles {
        let pool = platform::db::pool(&db.url_for(role), 2).unwrap();
        platform::db::migrate(&pool, platform::db::lock_key(role), sources(role))
            .await
            .unwrap_or_else(|e| panic!("{role} migrates: {e}"));
        // Again: nothing pending, so no DDL, which the runtime role could not do.
        platform::db::migrate(&pool, platform::db::lock_key(role), sources(role)).await.unwrap();
    }

    // The attack: a runtime role (an SQL injection, a stolen DATABASE_URL) changing the schema.
    let runtime = db.url_for("inventory");
    try_sql(
        &runtime,
        "INSERT INTO products (id, sku, name, price, currency, on_hand) \
         VALUES (gen_random_uuid(), 'sec-1', 'Widget', 1.00, 'EUR', 5); \
         UPDATE products SET on_hand = 6 WHERE sku = 'sec-1'; \
         INSERT INTO outbox (event_id, routing_key, payload) VALUES (gen_random_uuid(), 'k', '\\x00'); \
         SELECT count(*) FROM products; DELETE FROM outbox;",
    )
    .await
    .expect("the runtime role reads and writes rows, sequences included");
    for (attack, refusal) in [
        ("DROP TABLE products CASCADE", "must be owner"),
        ("ALTER TABLE products ADD COLUMN backdoor TEXT", "must be owner"),
        ("ALTER TABLE products DROP CONSTRAINT products_on_hand_check", "must be owner"),
        ("TRUNCATE products CASCADE", "permission denied"),
        ("CREATE TABLE loot (data TEXT)", "permission denied for schema"),
        ("CREATE FUNCTION evil() RETURNS int LANGUAGE sql AS 'SELECT 1'", "permission denied for schema"),
        ("DROP TABLE __diesel_schema_migrations", "must be owner"),
        ("INSERT INTO __diesel_schema_migrations (version) VALUES ('99999999999999')", "permission denied"),
        ("CREATE TABLE public.loot (data TEXT)", "permission denied for schema public"),
        ("CREATE SCHEMA loot", "permission denied for database"),
        ("SET ROLE inventory_owner", "permission denied"),
        ("SELECT * FROM payment.payments", "permission denied for schema payment"),
    ] {
        let outcome = try_sql(&runtime, attack).await;
        let error = outcome.expect_err(&format!("inventory may not: {attack}"));
        assert!(error.contains(refusal), "{attack}: {error}");
    }
    // The schema is intact: the owner (the migration role) still may, so the refusals above are
    // about the role, not a broken table.
    try_sql(
        &db.url_for("inventory_owner"),
        "ALTER TABLE products ADD COLUMN probe TEXT; ALTER TABLE products DROP COLUMN probe",
    )
    .await
    .unwrap();

    // Every service alike: the runtime role owns nothing, may create nothing, and has DML only.
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut admin = AsyncPgConnection::establish(&db.admin_url()).await.unwrap();
    for role in roles {
        let count = |sql: String| diesel::sql_query(sql);
        let owned: Count = count(format!(
            "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace \
             WHERE s.nspname = '{role}' AND pg_get_userbyid(c.relowner) = '{role}'"
        ))
        .get_result(&mut admin)
        .await
        .unwrap();
        assert_eq!(owned.n, 0, "{role} owns nothing in its schema");
        let tables: Count = count(format!(
            "SELECT count(*) AS n FROM pg_tables WHERE schemaname = '{role}' AND tableowner = '{role}_owner'"
        ))
        .get_result(&mut admin)
        .await
        .unwrap();
        assert!(tables.n >= 3, "{role}_owner owns the tables ({})", tables.n);
        let beyond_dml: Count = count(format!(
            "SELECT count(*) AS n FROM pg_tables t, unnest(ARRAY['TRUNCATE', 'REFERENCES', 'TRIGGER']) p \
             WHERE t.schemaname = '{role}' AND has_table_privilege('{role}', format('%I.%I', t.schemaname, t.tablename), p)"
        ))
        .get_result(&mut admin)
        .await
        .unwrap();
        assert_eq!(beyond_dml.n, 0, "{role} has only SELECT, INSERT, UPDATE, DELETE");
        let dml: Count = count(format!(
            "SELECT count(*) AS n FROM pg_tables t, unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p \
             WHERE t.schemaname = '{role}' AND t.tablename <> '__diesel_schema_migrations' \
               AND NOT has_table_privilege('{role}', format('%I.%I', t.schemaname, t.tablename), p)"
        ))
        .get_result(&mut admin)
        .await
        .unwrap();
        assert_eq!(dml.n, 0, "{role} reads and writes every table of its schema");
        let history: Count = count(format!(
            "SELECT count(*) AS n FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p \
             WHERE has_table_privilege('{role}', '{role}.__diesel_schema_migrations', p)"
        ))
        .get_result(&mut admin)
        .await
        .unwrap();
        assert_eq!(history.n, 1, "{role} reads its migration history, and may not forge it");
        let create: Count = count(format!(
            "SELECT count(*) AS n FROM pg_namespace WHERE nspname = '{role}' AND has_schema_privilege('{role}', oid, 'CREATE')"
        ))
        .get_result(&mut admin)
        .await
        .unwrap();
        assert_eq!(create.n, 0, "{role} cannot create in its schema");
    }
    drop(admin);
    db.drop_database().await.unwrap();
}

#[tokio::test]
async fn security_deploy_a_database_from_before_the_split_is_handed_to_the_owners() {
    // An existing installation: schemas and tables owned by the runtime roles, as the old
    // schemas.sql made them. Re-running today's set-up takes the schema away from them.
    let db = testkit::TestDatabase::create().await.unwrap();
    let admin = db.admin_url();
    try_sql(&admin, "ALTER SCHEMA notifier OWNER TO notifier").await.unwrap();
    let runtime = db.url_for("notifier");
    try_sql(&runtime, "CREATE TABLE legacy (id BIGSERIAL PRIMARY KEY, note TEXT)").await.unwrap();
    try_sql(&admin, &read("deploy/postgres/schemas.sql")).await.unwrap();
    try_sql(&runtime, "INSERT INTO legacy (note) VALUES ('still writable'); SELECT * FROM legacy")
        .await
        .unwrap();
    let error = try_sql(&runtime, "DROP TABLE legacy").await.expect_err("no longer the owner");
    assert!(error.contains("must be owner"), "{error}");
    let error = try_sql(&runtime, "CREATE TABLE more (id INT)").await.expect_err("no CREATE on the schema");
    assert!(error.contains("permission denied for schema"), "{error}");
    db.drop_database().await.unwrap();
}
