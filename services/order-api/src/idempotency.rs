//! Safe retries: the first answer to a (caller, `Idempotency-Key`) is stored and replayed for
//! 24 hours. The same key with a different request is refused; a retry that arrives while the
//! first is still being handled gets a 409 instead of running twice.

use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

diesel::table! {
    idempotency_keys (scope, key) {
        scope -> Text,
        key -> Text,
        fingerprint -> Bytea,
        response_status -> Nullable<Integer>,
        response_body -> Nullable<Bytea>,
        response_type -> Nullable<Text>,
        response_location -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

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

pub async fn begin(
    conn: &mut AsyncPgConnection,
    scope: &str,
    key: &str,
    fingerprint: &[u8],
) -> QueryResult<Begin> {
    // Keys older than 24 h are forgotten, so the same key may start afresh.
    diesel::sql_query("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND created_at < now() - interval '24 hours'")
        .bind::<Text, _>(scope)
        .bind::<Text, _>(key)
        .execute(conn)
        .await?;
    let inserted = diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::scope.eq(scope),
            idempotency_keys::key.eq(key),
            idempotency_keys::fingerprint.eq(fingerprint),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    if inserted == 1 {
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

/// Forgets the key (the request failed in a way worth retrying: a 5xx, a 429).
pub async fn abandon(conn: &mut AsyncPgConnection, scope: &str, key: &str) -> QueryResult<()> {
    diesel::delete(idempotency_keys::table.find((scope, key))).execute(conn).await?;
    Ok(())
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
