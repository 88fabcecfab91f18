//! The chaos run's own database, reached as the PostgreSQL superuser (as `make bench` and the
//! test harness do): created fresh with the service roles and schemas of deploy/postgres, read
//! for the checks, dropped at the end.

use anyhow::Context;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use std::path::Path;

#[derive(Clone)]
pub struct Database {
    pub name: String,
    host: String,
    superuser: String,
}

#[derive(diesel::QueryableByName)]
struct Pair {
    #[diesel(sql_type = Text)]
    a: String,
    #[diesel(sql_type = Text)]
    b: String,
}

impl Database {
    pub fn new(name: &str, host: &str) -> Self {
        let superuser = std::env::var("PGSUPERUSER").unwrap_or_else(|_| "postgres".to_owned());
        Self { name: name.to_owned(), host: host.to_owned(), superuser }
    }

    fn admin_url(&self, database: &str) -> String {
        format!("postgres://{}@{}/{database}", self.superuser, self.host)
    }

    /// The superuser's URL of this database: the checks read every service's schema.
    pub fn superuser_url(&self) -> String {
        self.admin_url(&self.name)
    }

    /// The URL a service uses: its own runtime role (migrations run as `<role>_owner`).
    pub fn url_for(&self, role: &str) -> String {
        format!("postgres://{role}@{}/{}", self.host, self.name)
    }

    /// Drops and creates the database, with the roles and schemas of `deploy/postgres`.
    pub async fn recreate(&self, repo: &Path) -> anyhow::Result<()> {
        let dir = repo.join("deploy/postgres");
        let roles =
            std::fs::read_to_string(dir.join("roles.sql")).context("reading deploy/postgres/roles.sql")?;
        let schemas = std::fs::read_to_string(dir.join("schemas.sql"))
            .context("reading deploy/postgres/schemas.sql")?;
        let mut admin = AsyncPgConnection::establish(&self.admin_url("postgres"))
            .await
            .with_context(|| format!("connecting to PostgreSQL at {} as {}", self.host, self.superuser))?;
        admin.batch_execute(&format!("BEGIN; {roles} COMMIT;")).await?;
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)).await?;
        admin.batch_execute(&format!("CREATE DATABASE \"{}\"", self.name)).await?;
        let mut db = AsyncPgConnection::establish(&self.admin_url(&self.name)).await?;
        db.batch_execute(&schemas).await?;
        Ok(())
    }

    pub async fn drop_database(&self) -> anyhow::Result<()> {
        let mut admin = AsyncPgConnection::establish(&self.admin_url("postgres")).await?;
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)).await?;
        Ok(())
    }

    pub async fn connect(&self) -> anyhow::Result<AsyncPgConnection> {
        Ok(AsyncPgConnection::establish(&self.admin_url(&self.name)).await?)
    }

    /// Rows of two text columns `a`, `b`.
    pub async fn pairs(&self, sql: &str) -> anyhow::Result<Vec<(String, String)>> {
        let mut conn = self.connect().await?;
        let rows: Vec<Pair> = diesel::sql_query(sql).load(&mut conn).await.with_context(|| sql.to_owned())?;
        Ok(rows.into_iter().map(|p| (p.a, p.b)).collect())
    }
}
