//! The `account_tokens` table: single-use, expiring secrets sent by email (email verification,
//! password reset). The token itself is 256 random bits shown only in the email; the table keeps
//! its SHA-256 (`domain::access_token`: a fast hash suffices for a random secret this long).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::schema::order_api::account_tokens;

/// What a token lets its holder do; stored as its snake_case name.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    strum::IntoStaticStr,
    strum::EnumString,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[strum(serialize_all = "snake_case")]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum Purpose {
    EmailVerification,
    PasswordReset,
}

contracts::text_column!(Purpose);

/// A freshly issued token: `secret` goes into the email and nowhere else.
pub struct Issued {
    pub id: Uuid,
    pub secret: String,
    pub expires_at: DateTime<Utc>,
}

/// Issues a token for `user_id`, valid for `ttl`. The account's spent or expired tokens go at
/// the same time, so the table holds at most the live ones per account.
pub async fn issue(
    conn: &mut AsyncPgConnection,
    user_id: Uuid,
    purpose: Purpose,
    ttl: chrono::Duration,
) -> QueryResult<Issued> {
    diesel::delete(
        account_tokens::table.filter(account_tokens::user_id.eq(user_id)).filter(
            account_tokens::used_at.is_not_null().or(account_tokens::expires_at.le(diesel::dsl::now)),
        ),
    )
    .execute(conn)
    .await?;
    let (secret, hash) = crate::domain::access_token::generate();
    let (id, expires_at) = (Uuid::now_v7(), Utc::now() + ttl);
    diesel::insert_into(account_tokens::table)
        .values((
            account_tokens::id.eq(id),
            account_tokens::user_id.eq(user_id),
            account_tokens::purpose.eq(purpose),
            account_tokens::token_hash.eq(hash),
            account_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .await?;
    Ok(Issued { id, secret, expires_at })
}

/// Spends the token: one conditional UPDATE (unused, unexpired, this purpose), so of two
/// concurrent uses only one succeeds. Returns the account it belongs to; `None` for a token
/// that is unknown, used, expired or for another purpose (deliberately one answer).
pub async fn spend(
    conn: &mut AsyncPgConnection,
    secret: &str,
    purpose: Purpose,
) -> QueryResult<Option<Uuid>> {
    diesel::update(
        account_tokens::table
            .filter(account_tokens::token_hash.eq(crate::domain::access_token::hash(secret)))
            .filter(account_tokens::purpose.eq(purpose))
            .filter(account_tokens::used_at.is_null())
            .filter(account_tokens::expires_at.gt(diesel::dsl::now)),
    )
    .set(account_tokens::used_at.eq(diesel::dsl::now))
    .returning(account_tokens::user_id)
    .get_result(conn)
    .await
    .optional()
}

/// The account a live token of `purpose` belongs to, without spending it (to check a new
/// password against the account before the token is spent).
pub async fn holder(
    conn: &mut AsyncPgConnection,
    secret: &str,
    purpose: Purpose,
) -> QueryResult<Option<Uuid>> {
    account_tokens::table
        .filter(account_tokens::token_hash.eq(crate::domain::access_token::hash(secret)))
        .filter(account_tokens::purpose.eq(purpose))
        .filter(account_tokens::used_at.is_null())
        .filter(account_tokens::expires_at.gt(diesel::dsl::now))
        .select(account_tokens::user_id)
        .first(conn)
        .await
        .optional()
}

/// Spends every other live token of `purpose` for the account (after a password reset, the
/// other reset links die with the old password).
pub async fn spend_all(conn: &mut AsyncPgConnection, user_id: Uuid, purpose: Purpose) -> QueryResult<usize> {
    diesel::update(
        account_tokens::table
            .filter(account_tokens::user_id.eq(user_id))
            .filter(account_tokens::purpose.eq(purpose))
            .filter(account_tokens::used_at.is_null()),
    )
    .set(account_tokens::used_at.eq(diesel::dsl::now))
    .execute(conn)
    .await
}
