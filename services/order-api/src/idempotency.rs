//! Safe retries: the first answer to a (caller, `Idempotency-Key`) is stored and replayed for
//! 24 hours. The same key with a different request is refused; a retry that arrives while the
//! first is still being handled gets a 409 instead of running twice, until the first has been
//! unanswered for longer than any request can run: then it died (a crash, a kill), and the
//! retry takes the key over. Expired rows are purged in bounded batches by `maintenance`.
//!
//! The caller is the account, or for a guest the client address (`guest:<address>`): a guest
//! cannot replay another guest's answer by guessing their key. Answers that carry secrets are not
//! stored as they are (see `http::guards`).

use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::schema::order_api::idempotency_keys;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    pub location: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Begin {
    /// First use of the key: handle the request, then `finish` or `abandon`.
    Fresh,
    Replay(StoredResponse),
    /// The key was used for a different request.
    Mismatch,
    /// The first request with this key is still being handled.
    InFlight,
}

/// A key is 1 to 255 visible ASCII characters (a UUID is typical).
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic())
}

/// fingerprint, status, body, content type, location
type StoredRow = (Vec<u8>, Option<i32>, Option<Vec<u8>>, Option<String>, Option<String>);

/// How long an answer is replayed.
pub const RETENTION: &str = "24 hours";

pub async fn begin(
    conn: &mut AsyncPgConnection,
    scope: &str,
    key: &str,
    fingerprint: &[u8],
    in_flight_timeout: std::time::Duration,
) -> QueryResult<Begin> {
    // A fresh key, or one older than 24 h (forgotten, so it starts afresh), is taken in one
    // statement (it was a DELETE and an INSERT, each its own transaction); a racing twin finds
    // the row fresh and takes nothing.
    let inserted = diesel::sql_query(format!(
        "INSERT INTO idempotency_keys (scope, key, fingerprint) VALUES ($1, $2, $3) \
         ON CONFLICT (scope, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, created_at = now(), \
           response_status = NULL, response_body = NULL, response_type = NULL, response_location = NULL \
         WHERE idempotency_keys.created_at < now() - interval '{RETENTION}'"
    ))
    .bind::<Text, _>(scope)
    .bind::<Text, _>(key)
    .bind::<diesel::sql_types::Bytea, _>(fingerprint)
    .execute(conn)
    .await?;
    if inserted == 1 {
        return Ok(Begin::Fresh);
    }
    // The same request still unanswered after the timeout: its handler is gone, take the key
    // over. The conditional update lets exactly one of several racing retries win.
    let taken_over = diesel::sql_query(
        "UPDATE idempotency_keys SET created_at = now() \
         WHERE scope = $1 AND key = $2 AND fingerprint = $3 AND response_status IS NULL \
           AND created_at < now() - make_interval(secs => $4)",
    )
    .bind::<Text, _>(scope)
    .bind::<Text, _>(key)
    .bind::<diesel::sql_types::Bytea, _>(fingerprint)
    .bind::<diesel::sql_types::Double, _>(in_flight_timeout.as_secs_f64())
    .execute(conn)
    .await?;
    if taken_over == 1 {
        tracing::warn!(scope, key, "took over an idempotency key whose request never answered");
        return Ok(Begin::Fresh);
    }
    let (stored_fingerprint, status, body, content_type, location): StoredRow = idempotency_keys::table
        .find((scope, key))
        .select((
            idempotency_keys::fingerprint,
            idempotency_keys::response_status,
            idempotency_keys::response_body,
            idempotency_keys::response_type,
            idempotency_keys::response_location,
        ))
        .first(conn)
        .await?;
    if stored_fingerprint != fingerprint {
        return Ok(Begin::Mismatch);
    }
    Ok(match (status, body) {
        (Some(status), Some(body)) => Begin::Replay(StoredResponse {
            status: u16::try_from(status).unwrap_or(500),
            body,
            content_type,
            location,
        }),
        _ => Begin::InFlight,
    })
}

pub async fn finish(
    conn: &mut AsyncPgConnection,
    scope: &str,
    key: &str,
    response: &StoredResponse,
) -> QueryResult<()> {
    diesel::update(idempotency_keys::table.find((scope, key)))
        .set((
            idempotency_keys::response_status.eq(i32::from(response.status)),
            idempotency_keys::response_body.eq(&response.body),
            idempotency_keys::response_type.eq(&response.content_type),
            idempotency_keys::response_location.eq(&response.location),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Forgets the key (the request failed in a way worth retrying: a 5xx, a 429; or its answer
/// carries a secret that must not be stored).
pub async fn abandon(conn: &mut AsyncPgConnection, scope: &str, key: &str) -> QueryResult<()> {
    diesel::delete(idempotency_keys::table.find((scope, key))).execute(conn).await?;
    Ok(())
}

/// Deletes up to `batch` expired keys, oldest first; returns how many. `SKIP LOCKED` lets
/// several gateway replicas purge at once without waiting on each other's rows.
pub async fn purge_expired(conn: &mut AsyncPgConnection, batch: i64) -> QueryResult<usize> {
    diesel::sql_query(format!(
        "DELETE FROM idempotency_keys WHERE (scope, key) IN ( \
           SELECT scope, key FROM idempotency_keys WHERE created_at < now() - interval '{RETENTION}' \
           ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
    ))
    .bind::<diesel::sql_types::BigInt, _>(batch)
    .execute(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_short_visible_ascii() {
        assert!(valid_key("0f8fad5b-d9cb-469f-a165-70867728950e"));
        assert!(!valid_key(""));
        assert!(!valid_key("has space"));
        assert!(!valid_key(&"k".repeat(256)));
        assert!(!valid_key("naïve"));
    }
}
