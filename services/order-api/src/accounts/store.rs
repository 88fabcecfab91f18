//! The users table.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use platform::auth::Role;
use uuid::Uuid;

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        name -> Text,
        password_hash -> Text,
        role -> Text,
        created_at -> Timestamptz,
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
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

/// `None` when the email was taken meanwhile (the unique index decides races).
pub async fn insert(
    conn: &mut AsyncPgConnection,
    email: &str,
    name: &str,
    password_hash: &str,
    role: Role,
) -> QueryResult<Option<User>> {
    diesel::insert_into(users::table)
        .values((
            users::id.eq(Uuid::now_v7()),
            users::email.eq(email),
            users::name.eq(name),
            users::password_hash.eq(password_hash),
            users::role.eq(role.as_str()),
        ))
        .on_conflict(users::email)
        .do_nothing()
        .returning(User::as_returning())
        .get_result(conn)
        .await
        .optional()
}
