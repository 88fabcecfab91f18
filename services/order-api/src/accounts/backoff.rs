//! Login backoff that holds across gateway replicas: failed attempts are counted in PostgreSQL
//! per account (normalised email, known or not, so the count reveals nothing) and per client
//! address. After the free attempts each further one must wait, doubling up to a maximum.
//!
//! An attempt is counted *before* the password is checked (and forgiven after a success), in one
//! conditional statement: a burst of parallel guesses cannot all slip through between a check
//! and a write, whichever replica they reach.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Double, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// From the settings (`LOGIN_FREE_ATTEMPTS_*`, `LOGIN_BACKOFF_MAX_SECONDS`).
#[derive(Debug, Clone, Copy)]
pub struct LoginPolicy {
    pub free_per_account: i64,
    pub free_per_client: i64,
    pub max_backoff_seconds: i64,
}

/// What a login (or password-reset) attempt is counted against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Account(String),
    Client(std::net::IpAddr),
    /// Password-reset requests, counted apart from logins (every request counts: none is
    /// forgiven), so resets cannot flood a mailbox and do not lock anyone out of logging in.
    ResetAccount(String),
    ResetClient(std::net::IpAddr),
}

impl Subject {
    fn key(&self) -> String {
        match self {
            Self::Account(email) => format!("account:{email}"),
            Self::Client(address) => format!("client:{address}"),
            Self::ResetAccount(email) => format!("reset-account:{email}"),
            Self::ResetClient(address) => format!("reset-client:{address}"),
        }
    }
}

/// Failures older than this are forgotten: the count starts again.
const WINDOW: &str = "1 hour";

#[derive(QueryableByName)]
struct Failures {
    #[diesel(sql_type = BigInt)]
    #[expect(dead_code, reason = "only whether a row came back matters; RETURNING needs a column")]
    failures: i64,
}

#[derive(QueryableByName)]
struct Wait {
    #[diesel(sql_type = Double)]
    seconds: f64,
}

/// Counts one attempt against `subject`; `Err(seconds)` when it must wait that long first (and
/// then nothing is counted).
pub async fn claim(
    conn: &mut AsyncPgConnection,
    subject: &Subject,
    free: i64,
    max_seconds: i64,
) -> diesel::QueryResult<Result<(), u64>> {
    // The wait after the n-th failure: none while n < free, then 1 s, 2 s, 4 s, ... capped.
    let failures =
        format!("CASE WHEN a.last_attempt_at < now() - interval '{WINDOW}' THEN 1 ELSE a.failures + 1 END");
    let wait = |n: &str| {
        format!("CASE WHEN {n} >= $2 THEN least($3::float8, power(2::float8, ({n} - $2)::float8)) ELSE 0 END")
    };
    let counted: Vec<Failures> = diesel::sql_query(format!(
        "INSERT INTO login_attempts AS a (subject, failures, last_attempt_at, blocked_until) \
         VALUES ($1, 1, now(), now() + make_interval(secs => {first})) \
         ON CONFLICT (subject) DO UPDATE SET \
           failures = {failures}, last_attempt_at = now(), \
           blocked_until = now() + make_interval(secs => {next}) \
         WHERE a.blocked_until <= now() \
         RETURNING a.failures::int8 AS failures",
        first = wait("1"),
        next = wait(&format!("({failures})")),
    ))
    .bind::<Text, _>(subject.key())
    .bind::<BigInt, _>(free)
    .bind::<BigInt, _>(max_seconds)
    .load(conn)
    .await?;
    if !counted.is_empty() {
        return Ok(Ok(()));
    }
    let wait: Vec<Wait> = diesel::sql_query(
        "SELECT GREATEST(EXTRACT(EPOCH FROM blocked_until - now()), 0)::float8 AS seconds \
         FROM login_attempts WHERE subject = $1",
    )
    .bind::<Text, _>(subject.key())
    .load(conn)
    .await?;
    let seconds = wait.into_iter().next().map_or(1.0, |w| w.seconds);
    Ok(Err((seconds.ceil() as u64).max(1)))
}

/// A successful login: the account starts afresh; the client's attempt is forgiven (people
/// behind one address who log in correctly do not use up each other's attempts).
pub async fn succeeded(
    conn: &mut AsyncPgConnection,
    account: &Subject,
    client: &Subject,
) -> diesel::QueryResult<()> {
    diesel::sql_query("DELETE FROM login_attempts WHERE subject = $1")
        .bind::<Text, _>(account.key())
        .execute(conn)
        .await?;
    diesel::sql_query("UPDATE login_attempts SET failures = GREATEST(failures - 1, 0) WHERE subject = $1")
        .bind::<Text, _>(client.key())
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes up to `batch` counts that no longer matter (no wait pending, last attempt outside
/// the window); `SKIP LOCKED` so replicas purging together do not queue on each other.
pub async fn purge_stale(conn: &mut AsyncPgConnection, batch: i64) -> diesel::QueryResult<usize> {
    diesel::sql_query(format!(
        "DELETE FROM login_attempts WHERE subject IN ( \
           SELECT subject FROM login_attempts \
           WHERE blocked_until < now() AND last_attempt_at < now() - interval '{WINDOW}' \
           LIMIT $1 FOR UPDATE SKIP LOCKED)"
    ))
    .bind::<BigInt, _>(batch)
    .execute(conn)
    .await
}
