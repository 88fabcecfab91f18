//! The PostgreSQL pool and embedded migrations.
//!
//! Each service connects with its own login role, whose `search_path` is its own schema (see
//! `deploy/postgres/`), so table names in queries and migrations are unqualified and a service
//! physically cannot read another service's tables.

use diesel::sql_types::BigInt;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::{AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};

pub type PgPool = Pool<AsyncPgConnection>;
pub type PooledConnection = diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot build the connection pool: {0}")]
    Build(String),
    #[error("no database connection available: {0}")]
    Pool(#[from] diesel_async::pooled_connection::deadpool::PoolError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("migration failed: {0}")]
    Migration(String),
}

pub fn pool(database_url: &str, max_size: usize) -> Result<PgPool, DbError> {
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new(database_url);
    Pool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(std::time::Duration::from_secs(10)))
        .create_timeout(Some(std::time::Duration::from_secs(5)))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|error| DbError::Build(error.to_string()))
}

/// Runs every pending migration of each source, in order, while holding a PostgreSQL advisory
/// lock keyed by `lock_key`, so replicas that start together migrate once and the others wait.
pub async fn migrate(pool: &PgPool, lock_key: i64, sources: Vec<EmbeddedMigrations>) -> Result<(), DbError> {
    let mut conn = pool.get().await?;
    diesel::sql_query("SELECT pg_advisory_lock($1)").bind::<BigInt, _>(lock_key).execute(&mut *conn).await?;
    let outcome = run_sources(pool, sources).await;
    diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(lock_key)
        .execute(&mut *conn)
        .await?;
    outcome
}

async fn run_sources(pool: &PgPool, sources: Vec<EmbeddedMigrations>) -> Result<(), DbError> {
    for source in sources {
        let conn = deadpool::managed::Object::take(pool.get().await?);
        // The harness blocks on the runtime internally, so it must run on a blocking thread.
        tokio::task::spawn_blocking(move || {
            let mut harness = AsyncMigrationHarness::new(conn);
            harness.run_pending_migrations(source).map(|applied| applied.len())
        })
        .await
        .map_err(|error| DbError::Migration(error.to_string()))?
        .map_err(|error| DbError::Migration(error.to_string()))?;
    }
    Ok(())
}

/// A stable advisory-lock key for a name (FNV-1a), so each service's migrations and scheduled
/// jobs lock independently.
pub fn lock_key(name: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// True when the pool can hand out a connection that answers `SELECT 1`.
pub async fn ping(pool: &PgPool) -> bool {
    match pool.get().await {
        Ok(mut conn) => diesel::sql_query("SELECT 1").execute(&mut *conn).await.is_ok(),
        Err(_) => false,
    }
}
