//! The PostgreSQL pool and embedded migrations.
//!
//! Each service connects with its own login role, whose `search_path` is its own schema (see
//! `deploy/postgres/`), so table names in queries and migrations are unqualified and a service
//! physically cannot read another service's tables.
//!
//! That runtime role may only read and write rows: the schema and its tables belong to
//! `<role>_owner`, and migrations run as that role. `<service> migrate` is started with a
//! `DATABASE_URL` naming the owner (the compose `-migrate` services, the Kubernetes Jobs); a
//! service started as its runtime role finds nothing pending and goes on. Where something is
//! pending at start (`make run`, the tests: trust authentication on 127.0.0.1), [`migrate`]
//! applies it as `<role>_owner` on the same server and database, without a password; with
//! password authentication that connection is refused and the service stops with a message
//! that says to run `migrate` first.

use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use diesel_async::{AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};
use std::collections::BTreeSet;

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
    #[error(
        "{pending} database migration(s) pending, and the runtime role `{role}` may not change its \
         schema; they are applied as `{role}_owner`, but connecting as `{role}_owner@{host}:{port}/{database}` \
         without a password failed ({reason}). Run `<service> migrate` with DATABASE_URL naming \
         `{role}_owner` first (deploy/README.md, Migrations)"
    )]
    NeedsOwner { pending: usize, role: String, host: String, port: i32, database: String, reason: String },
}

/// A pool whose checkouts cost no round trip. diesel-async's default recycle check
/// (`Verified`) runs `SELECT 1` on every checkout: an extra autocommitted statement (and
/// transaction) per request, per consumer batch and per relay round. `Fast` still drops a
/// connection whose transaction was left open or broken, or whose socket the server closed
/// (a restart, `pg_terminate_backend`); a connection that died silently fails its next
/// statement instead, which every caller already handles (a 503, a redelivery, a retried
/// round), and is then dropped as broken.
pub fn pool(database_url: &str, max_size: usize) -> Result<PgPool, DbError> {
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(database_url, config);
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
///
/// Nothing pending: returns without any DDL, so a runtime role that may not create tables
/// starts. Something pending: applied through `pool` when its role may create objects in its
/// schema (the owner, `<service> migrate`), else as `<role>_owner` (module documentation).
pub async fn migrate(pool: &PgPool, lock_key: i64, sources: Vec<EmbeddedMigrations>) -> Result<(), DbError> {
    let mut held = AdvisoryLock::new(lock_key).hold(pool).await?;
    let outcome = migrate_locked(pool, held.connection(), sources).await;
    held.release().await?;
    outcome
}

#[derive(diesel::QueryableByName)]
struct Session {
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = Text)]
    database: String,
    #[diesel(sql_type = Nullable<Text>)]
    host: Option<String>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Integer>)]
    port: Option<i32>,
    #[diesel(sql_type = Bool)]
    may_create: bool,
    #[diesel(sql_type = Bool)]
    has_history: bool,
}

#[derive(diesel::QueryableByName)]
struct Applied {
    #[diesel(sql_type = Text)]
    version: String,
}

async fn migrate_locked(
    pool: &PgPool,
    conn: &mut AsyncPgConnection,
    sources: Vec<EmbeddedMigrations>,
) -> Result<(), DbError> {
    let session: Session = diesel::sql_query(
        "SELECT current_user::text AS role, current_database()::text AS database, \
                host(inet_server_addr()) AS host, inet_server_port() AS port, \
                has_schema_privilege(current_schema(), 'CREATE') AS may_create, \
                to_regclass('__diesel_schema_migrations') IS NOT NULL AS has_history",
    )
    .get_result(conn)
    .await?;
    let applied: BTreeSet<String> = if session.has_history {
        diesel::sql_query("SELECT version::text AS version FROM __diesel_schema_migrations")
            .load::<Applied>(conn)
            .await?
            .into_iter()
            .map(|row| row.version)
            .collect()
    } else {
        BTreeSet::new()
    };
    let mut pending = 0;
    for source in &sources {
        let migrations = MigrationSource::<Pg>::migrations(source)
            .map_err(|error| DbError::Migration(error.to_string()))?;
        pending += migrations.iter().filter(|m| !applied.contains(&m.name().version().to_string())).count();
    }
    if pending == 0 {
        return Ok(());
    }
    if session.may_create {
        return run_sources(pool, sources).await;
    }
    // The runtime role: apply them as its owner, which only a passwordless set-up allows.
    let needs_owner = |reason: String| DbError::NeedsOwner {
        pending,
        role: session.role.clone(),
        host: session.host.clone().unwrap_or_else(|| "(unix socket)".to_owned()),
        port: session.port.unwrap_or_default(),
        database: session.database.clone(),
        reason,
    };
    let (Some(host), Some(port)) = (&session.host, session.port) else {
        return Err(needs_owner("connected through a unix socket".to_owned()));
    };
    let host = if host.contains(':') { format!("[{host}]") } else { host.clone() };
    let owner_url = format!("postgres://{}_owner@{host}:{port}/{}", session.role, session.database);
    let owner = self::pool(&owner_url, 1)?;
    if let Err(error) = owner.get().await {
        return Err(needs_owner(error.to_string()));
    }
    tracing::info!(role = %session.role, pending, "applying migrations as the schema owner");
    run_sources(&owner, sources).await
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

/// A PostgreSQL advisory lock: the one way a service makes sure only one replica does
/// something (migrations, a scheduled sweep, the daily summary) or serialises work on a key
/// that has no row to lock (order intake per client).
///
/// Two scopes: [`lock_in`](Self::lock_in) / [`try_lock_in`](Self::try_lock_in) take it inside
/// the caller's transaction, released by its end; [`hold`](Self::hold) /
/// [`try_hold`](Self::try_hold) take a connection of its own and keep the lock for the
/// session until [`Held::release`], while the work runs on other connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvisoryLock(i64);

#[derive(diesel::QueryableByName)]
struct Taken {
    #[diesel(sql_type = Bool)]
    taken: bool,
}

impl AdvisoryLock {
    pub fn new(key: i64) -> Self {
        Self(key)
    }

    /// The lock for a name (see [`lock_key`]): `"payment.sweeper"`, `"open-orders:account:…"`.
    pub fn named(name: &str) -> Self {
        Self(lock_key(name))
    }

    /// Waits for the lock; the surrounding transaction's end releases it.
    pub async fn lock_in(self, conn: &mut AsyncPgConnection) -> diesel::QueryResult<()> {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)").bind::<BigInt, _>(self.0).execute(conn).await?;
        Ok(())
    }

    /// Takes the lock if free (false when another session holds it); the surrounding
    /// transaction's end releases it.
    pub async fn try_lock_in(self, conn: &mut AsyncPgConnection) -> diesel::QueryResult<bool> {
        let row: Taken = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS taken")
            .bind::<BigInt, _>(self.0)
            .get_result(conn)
            .await?;
        Ok(row.taken)
    }

    /// Waits for the lock on a connection of its own, held until [`Held::release`].
    pub async fn hold(self, pool: &PgPool) -> Result<Held, DbError> {
        let mut conn = pool.get().await?;
        diesel::sql_query("SELECT pg_advisory_lock($1)")
            .bind::<BigInt, _>(self.0)
            .execute(&mut *conn)
            .await?;
        Ok(Held { lock: self, conn: Some(conn) })
    }

    /// [`hold`](Self::hold) if the lock is free; `None` when another session holds it.
    pub async fn try_hold(self, pool: &PgPool) -> Result<Option<Held>, DbError> {
        let mut conn = pool.get().await?;
        let row: Taken = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS taken")
            .bind::<BigInt, _>(self.0)
            .get_result(&mut *conn)
            .await?;
        Ok(row.taken.then_some(Held { lock: self, conn: Some(conn) }))
    }
}

/// A session advisory lock and the connection holding it.
pub struct Held {
    lock: AdvisoryLock,
    conn: Option<PooledConnection>,
}

impl Held {
    /// The holding connection, for work that may run on it.
    pub fn connection(&mut self) -> &mut AsyncPgConnection {
        match &mut self.conn {
            Some(conn) => conn,
            None => unreachable!("a Held lock keeps its connection until released or dropped"),
        }
    }

    /// Unlocks, and gives the connection back to the pool.
    pub async fn release(mut self) -> Result<(), DbError> {
        if let Some(mut conn) = self.conn.take() {
            diesel::sql_query("SELECT pg_advisory_unlock($1)")
                .bind::<BigInt, _>(self.lock.0)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

impl Drop for Held {
    /// Dropped without [`release`](Held::release) (an early return, a panic, a cancelled
    /// task): the connection must not go back to the pool still holding the lock, so it is
    /// taken out of the pool and closed, which ends the session and its lock.
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(deadpool::managed::Object::take(conn));
        }
    }
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
