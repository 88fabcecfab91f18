//! The users table.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use platform::auth::Role;
use uuid::Uuid;

use crate::schema::order_api::users;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    /// Raised by logout and (through a trigger) by a password or role change; tokens issued
    /// under a lower version are refused.
    pub session_version: i64,
    /// When the account proved it reads its email (`None`: not yet).
    pub email_verified_at: Option<DateTime<Utc>>,
}

impl User {
    /// The column is constrained to the two roles; anything else would be a customer.
    pub fn role(&self) -> Role {
        if self.role == "admin" { Role::Admin } else { Role::Customer }
    }
}

pub async fn find_by_email(conn: &mut AsyncPgConnection, email: &str) -> QueryResult<Option<User>> {
    users::table.filter(users::email.eq(email)).select(User::as_select()).first(conn).await.optional()
}

pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<User>> {
    users::table.find(id).select(User::as_select()).first(conn).await.optional()
}

/// `None` when the email was taken meanwhile (the unique index decides races). `verified`:
/// the address counts as proven from the start (admins, set up by an operator).
pub async fn insert(
    conn: &mut AsyncPgConnection,
    email: &str,
    name: &str,
    password_hash: &str,
    role: Role,
    verified: bool,
) -> QueryResult<Option<User>> {
    diesel::insert_into(users::table)
        .values((
            users::id.eq(Uuid::now_v7()),
            users::email.eq(email),
            users::name.eq(name),
            users::password_hash.eq(password_hash),
            users::role.eq(role.as_str()),
            users::email_verified_at.eq(verified.then(Utc::now)),
        ))
        .on_conflict(users::email)
        .do_nothing()
        .returning(User::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Marks the account's email verified; the first time counts, later ones change nothing.
pub async fn mark_verified(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<()> {
    diesel::update(users::table.find(id).filter(users::email_verified_at.is_null()))
        .set(users::email_verified_at.eq(diesel::dsl::now))
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether the account has verified its email (false for an unknown account).
pub async fn is_verified(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
    let verified: Option<Option<DateTime<Utc>>> =
        users::table.find(id).select(users::email_verified_at).first(conn).await.optional()?;
    Ok(verified.flatten().is_some())
}

/// Revokes every token of `id` issued so far; returns the new session version (`None`: no
/// such account).
pub async fn revoke_sessions(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<i64>> {
    diesel::update(users::table.find(id))
        .set((
            users::session_version.eq(users::session_version + 1),
            users::sessions_revoked_at.eq(diesel::dsl::now),
        ))
        .returning(users::session_version)
        .get_result(conn)
        .await
        .optional()
}

/// Sets a new password hash; the trigger raises the session version, which is returned.
pub async fn set_password_hash(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    hash: &str,
) -> QueryResult<Option<i64>> {
    diesel::update(users::table.find(id))
        .set(users::password_hash.eq(hash))
        .returning(users::session_version)
        .get_result(conn)
        .await
        .optional()
}

/// Accounts whose sessions were revoked after `since`, with the lowest session version still
/// valid.
pub async fn revoked_since(
    conn: &mut AsyncPgConnection,
    since: DateTime<Utc>,
) -> QueryResult<Vec<(Uuid, i64)>> {
    users::table
        .filter(users::sessions_revoked_at.gt(since))
        .select((users::id, users::session_version))
        .load(conn)
        .await
}
