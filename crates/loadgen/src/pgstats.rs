//! PostgreSQL's own counters, read before and after a run on the bench database: per database
//! role (one per service) the transactions, statements and WAL bytes from `pg_stat_statements`
//! when it is loaded; always the database's commits and rows (`pg_stat_database`), rows written
//! per schema (`pg_stat_user_tables`), the cluster's WAL position, and which backend process
//! serves which role, so their CPU can be charged to the service they work for.

use anyhow::Context;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Integer, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::collections::HashMap;

/// What one role's statements did (from `pg_stat_statements`, top-level statements only).
#[derive(Clone, Debug, Default, QueryableByName)]
pub struct RoleStatements {
    #[diesel(sql_type = Text)]
    pub role: String,
    /// `COMMIT`s: transactions the role opened with `BEGIN` (a statement outside a transaction
    /// commits on its own and is counted in `statements` only).
    #[diesel(sql_type = BigInt)]
    pub commits: i64,
    /// Every other statement (transaction control excluded).
    #[diesel(sql_type = BigInt)]
    pub statements: i64,
    #[diesel(sql_type = BigInt)]
    pub wal_bytes: i64,
}

#[derive(Clone, Debug, Default, QueryableByName)]
pub struct Database {
    #[diesel(sql_type = BigInt)]
    pub commits: i64,
    #[diesel(sql_type = BigInt)]
    pub rollbacks: i64,
    #[diesel(sql_type = BigInt)]
    pub rows_written: i64,
    #[diesel(sql_type = BigInt)]
    pub rows_read: i64,
    /// The cluster's WAL position in bytes: every database's writes, not only this one's.
    #[diesel(sql_type = BigInt)]
    pub cluster_wal: i64,
}

#[derive(Clone, Debug, QueryableByName)]
struct SchemaRows {
    #[diesel(sql_type = Text)]
    schema: String,
    #[diesel(sql_type = BigInt)]
    rows_written: i64,
}

/// A server process: a client backend of this database (with its role) or a background process
/// of the cluster (checkpointer, WAL writer, autovacuum, ...; `role` empty).
#[derive(Clone, Debug, QueryableByName)]
pub struct Backend {
    #[diesel(sql_type = Integer)]
    pub pid: i32,
    #[diesel(sql_type = Text)]
    pub role: String,
}

#[derive(QueryableByName)]
struct Loaded {
    #[diesel(sql_type = Bool)]
    loaded: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// `None` when `pg_stat_statements` is not in `shared_preload_libraries`.
    pub statements: Option<Vec<RoleStatements>>,
    pub database: Database,
    pub rows_written_by_schema: HashMap<String, i64>,
    pub backends: Vec<Backend>,
}

const STATEMENTS: &str = r"
SELECT r.rolname AS role,
       COALESCE(SUM(s.calls) FILTER (WHERE s.query ~* '^\s*(commit|end)\M'), 0)::int8 AS commits,
       COALESCE(SUM(s.calls) FILTER (WHERE s.query !~* '^\s*(begin|start|commit|end|rollback|savepoint|release)\M'), 0)::int8
           AS statements,
       COALESCE(SUM(s.wal_bytes), 0)::int8 AS wal_bytes
FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND s.toplevel
GROUP BY r.rolname";

const DATABASE: &str = r"
SELECT xact_commit::int8 AS commits, xact_rollback::int8 AS rollbacks,
       (tup_inserted + tup_updated + tup_deleted)::int8 AS rows_written,
       (tup_returned + tup_fetched)::int8 AS rows_read,
       pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8 AS cluster_wal
FROM pg_stat_database WHERE datname = current_database()";

const SCHEMAS: &str = r"
SELECT schemaname::text AS schema, SUM(n_tup_ins + n_tup_upd + n_tup_del)::int8 AS rows_written
FROM pg_stat_user_tables GROUP BY schemaname";

const BACKENDS: &str = r"
SELECT pid, CASE WHEN backend_type = 'client backend' THEN COALESCE(usename::text, '') ELSE '' END AS role
FROM pg_stat_activity
WHERE pid <> pg_backend_pid()
  AND (datname = current_database() OR backend_type <> 'client backend')";

pub struct Reader {
    conn: AsyncPgConnection,
    statements_loaded: bool,
}

impl Reader {
    /// Connects (as a superuser: the statistics of every role are needed) and, when
    /// `pg_stat_statements` is loaded, creates its view in this database if missing.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let mut conn = AsyncPgConnection::establish(url).await.context("connecting for the profile")?;
        let loaded: Loaded = diesel::sql_query(
            "SELECT 'pg_stat_statements' = ANY(string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ',')) AS loaded",
        )
        .get_result(&mut conn)
        .await
        .context("reading shared_preload_libraries")?;
        if loaded.loaded {
            diesel::sql_query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                .execute(&mut conn)
                .await
                .context("creating the pg_stat_statements extension")?;
        }
        Ok(Self { conn, statements_loaded: loaded.loaded })
    }

    pub async fn read(&mut self) -> anyhow::Result<Snapshot> {
        let conn = &mut self.conn;
        let statements = if self.statements_loaded {
            Some(diesel::sql_query(STATEMENTS).load(conn).await.context("reading pg_stat_statements")?)
        } else {
            None
        };
        let database: Database =
            diesel::sql_query(DATABASE).get_result(conn).await.context("reading pg_stat_database")?;
        let schemas: Vec<SchemaRows> =
            diesel::sql_query(SCHEMAS).load(conn).await.context("reading pg_stat_user_tables")?;
        let backends = diesel::sql_query(BACKENDS).load(conn).await.context("reading pg_stat_activity")?;
        Ok(Snapshot {
            statements,
            database,
            rows_written_by_schema: schemas.into_iter().map(|s| (s.schema, s.rows_written)).collect(),
            backends,
        })
    }
}
