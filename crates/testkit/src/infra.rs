//! A database and a vhost per test, so the suite runs in parallel against the shared servers.

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

fn pg_host() -> String {
    std::env::var("TEST_PG_HOST").unwrap_or_else(|_| "127.0.0.1:5432".to_owned())
}

fn admin_url(database: &str) -> String {
    let user = std::env::var("TEST_PG_SUPERUSER").unwrap_or_else(|_| "postgres".to_owned());
    format!("postgres://{user}@{}/{database}", pg_host())
}

pub struct TestDatabase {
    pub name: String,
}

impl TestDatabase {
    /// Creates `t_<random>` with every service's schema, owned by the service's role.
    pub async fn create() -> anyhow::Result<Self> {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let root = crate::repo_root().join("deploy/postgres");
        let roles = std::fs::read_to_string(root.join("roles.sql"))?;
        let schemas = std::fs::read_to_string(root.join("schemas.sql"))?;
        let mut admin = AsyncPgConnection::establish(&admin_url("postgres")).await?;
        admin.batch_execute(&format!("BEGIN; {roles} COMMIT;")).await?;
        admin.batch_execute(&format!("CREATE DATABASE \"{name}\"")).await?;
        let mut db = AsyncPgConnection::establish(&admin_url(&name)).await?;
        db.batch_execute(&schemas).await?;
        Ok(Self { name })
    }

    /// The URL a service uses: its own role, this database.
    pub fn url_for(&self, role: &str) -> String {
        format!("postgres://{role}@{}/{}", pg_host(), self.name)
    }

    pub fn admin_url(&self) -> String {
        admin_url(&self.name)
    }

    /// Runs `SELECT count(*) AS n ...` (or any query yielding one BIGINT `n`) as the superuser.
    pub async fn count(&self, sql: &str) -> anyhow::Result<i64> {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = AsyncPgConnection::establish(&self.admin_url()).await?;
        Ok(diesel_async::RunQueryDsl::get_result::<Count>(diesel::sql_query(sql), &mut conn).await?.n)
    }

    pub async fn drop_database(self) -> anyhow::Result<()> {
        let mut admin = AsyncPgConnection::establish(&admin_url("postgres")).await?;
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)).await?;
        Ok(())
    }
}

fn management_base() -> String {
    std::env::var("TEST_RABBITMQ_MANAGEMENT").unwrap_or_else(|_| "http://127.0.0.1:15672".to_owned())
}

pub struct TestVhost {
    pub name: String,
}

impl TestVhost {
    /// Creates a vhost through the management API (the `rabbitmq_management` plugin, which
    /// `make test` enables) and gives `guest` full rights on it.
    pub async fn create() -> anyhow::Result<Self> {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let client = reqwest::Client::new();
        let base = management_base();
        client
            .put(format!("{base}/api/vhosts/{name}"))
            .basic_auth("guest", Some("guest"))
            .send()
            .await?
            .error_for_status()?;
        client
            .put(format!("{base}/api/permissions/{name}/guest"))
            .basic_auth("guest", Some("guest"))
            .json(&serde_json::json!({"configure": ".*", "write": ".*", "read": ".*"}))
            .send()
            .await?
            .error_for_status()?;
        Ok(Self { name })
    }

    /// Loads `deploy/rabbitmq/definitions.json` (every service's exchanges, queues and
    /// bindings) into this vhost, as an operator does before the first start
    /// (`deploy/rabbitmq/setup.sh`); the service users' permissions are left out (the tests
    /// connect as `guest`).
    pub async fn load_definitions(&self) -> anyhow::Result<()> {
        let path = crate::repo_root().join("deploy/rabbitmq/definitions.json");
        let mut definitions: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        let Some(sections) = definitions.as_object_mut() else {
            anyhow::bail!("{} is not a JSON object", path.display());
        };
        for dropped in ["vhosts", "permissions", "topic_permissions"] {
            sections.remove(dropped);
        }
        for item in sections.values_mut().filter_map(|list| list.as_array_mut()).flatten() {
            item["vhost"] = serde_json::Value::String(self.name.clone());
        }
        reqwest::Client::new()
            .post(format!("{}/api/definitions", management_base()))
            .basic_auth("guest", Some("guest"))
            .json(&definitions)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    pub fn amqp_url(&self) -> String {
        let host = std::env::var("TEST_AMQP_HOST").unwrap_or_else(|_| "127.0.0.1:5672".to_owned());
        format!("amqp://guest:guest@{host}/{}", self.name)
    }

    pub async fn delete(self) -> anyhow::Result<()> {
        reqwest::Client::new()
            .delete(format!("{}/api/vhosts/{}", management_base(), self.name))
            .basic_auth("guest", Some("guest"))
            .send()
            .await?;
        Ok(())
    }
}
