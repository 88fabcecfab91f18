//! Accounts: who may call the API. Customers register themselves; admins come from the
//! `BOOTSTRAP_ADMIN_*` settings or `order-api create-admin`, never from a default password.

pub mod backoff;
pub mod password;
pub mod sessions;
pub mod store;
pub mod tokens;
pub mod verification;

use diesel_async::AsyncConnection;
use password::{PasswordError, check_policy};
use platform::auth::{Role, TokenKeys};
use platform::validation::Violation;
use serde::{Deserialize, Serialize};
use store::User;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("invalid registration")]
    Invalid(Vec<Violation>),
    #[error("an account with this email exists")]
    EmailTaken,
    #[error("wrong email or password")]
    InvalidCredentials,
    #[error("the token is unknown, used or expired")]
    InvalidToken,
    #[error("the account has not verified its email")]
    EmailNotVerified,
    #[error("too many failed logins; retry in {retry_after_seconds} s")]
    Backoff { retry_after_seconds: u64 },
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error(transparent)]
    Token(#[from] platform::auth::KeyError),
    #[error("the database is not reachable")]
    Unavailable(#[source] diesel_async::pooled_connection::deadpool::PoolError),
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub email: String,
    pub password: String,
    pub name: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccessToken {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Profile {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    #[schema(value_type = String, example = "customer")]
    pub role: Role,
    /// Whether the account followed the link in its verification email.
    pub email_verified: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<User> for Profile {
    fn from(user: User) -> Self {
        Self {
            role: user.role(),
            email_verified: user.email_verified_at.is_some(),
            id: user.id,
            email: user.email,
            name: user.name,
            created_at: user.created_at,
        }
    }
}

pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

fn validate(registration: &Registration) -> Vec<Violation> {
    let mut errors = Vec::new();
    let email = normalise_email(&registration.email);
    if !crate::domain::new_order::is_plausible_email(&email) {
        errors.push(Violation::new("email", "must be a valid email address"));
    }
    let name = registration.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        errors.push(Violation::new("name", "must be 1 to 200 characters"));
    }
    if let Err(reason) = check_policy(&registration.password, &email) {
        errors.push(Violation::new("password", reason));
    }
    errors
}

/// A checked registration with its password hashed: everything that needs no database, so the
/// slow hashing never holds a pooled connection.
pub struct PreparedAccount {
    email: String,
    name: String,
    password_hash: String,
}

impl PreparedAccount {
    /// What a registration answers when the email already has an account: the same shape as a
    /// new profile (a fresh id, this request's name), so the answer does not tell whether the
    /// email is registered. Nothing is stored.
    pub fn look_alike_profile(&self) -> Profile {
        Profile {
            id: Uuid::now_v7(),
            email: self.email.clone(),
            name: self.name.clone(),
            role: Role::Customer,
            email_verified: false,
            created_at: chrono::Utc::now(),
        }
    }
}

/// Validates and hashes (on a blocking thread: argon2 is deliberately slow). Every valid
/// registration is hashed, taken email or not, so timing does not tell them apart either.
pub async fn prepare(registration: Registration) -> Result<PreparedAccount, AccountError> {
    let errors = validate(&registration);
    if !errors.is_empty() {
        return Err(AccountError::Invalid(errors));
    }
    Ok(PreparedAccount {
        email: normalise_email(&registration.email),
        name: registration.name.trim().to_owned(),
        password_hash: password::hash(registration.password).await?,
    })
}

/// Stores an account set up by an operator (its email counts as verified); `EmailTaken` when
/// the email has one (the unique index decides races). Customers register through
/// `verification::register_customer`, which also sends the verification email.
pub async fn create(
    conn: &mut diesel_async::AsyncPgConnection,
    account: &PreparedAccount,
    role: Role,
) -> Result<Profile, AccountError> {
    let user = store::insert(conn, &account.email, &account.name, &account.password_hash, role, true)
        .await?
        .ok_or(AccountError::EmailTaken)?;
    Ok(user.into())
}

/// Creates an account with `role` (the admin set-up paths; the public route uses `prepare` and
/// `verification::register_customer` so no connection is held while hashing).
pub async fn register(
    conn: &mut diesel_async::AsyncPgConnection,
    registration: Registration,
    role: Role,
) -> Result<Profile, AccountError> {
    let account = prepare(registration).await?;
    create(conn, &account, role).await
}

/// Checks the credentials under the login backoff (`backoff`): the attempt is counted against
/// the account and the client address first, and refused with `Backoff` while either must wait.
/// The pooled connection is given back before argon2 runs, so slow hashing under a flood of
/// logins cannot starve the pool.
pub async fn login(
    pool: &platform::db::PgPool,
    keys: &TokenKeys,
    credentials: Credentials,
    client: std::net::IpAddr,
    policy: backoff::LoginPolicy,
) -> Result<AccessToken, AccountError> {
    let email = normalise_email(&credentials.email);
    let (account, client) = (backoff::Subject::Account(email.clone()), backoff::Subject::Client(client));
    let user = {
        let mut pooled = pool.get().await.map_err(AccountError::Unavailable)?;
        let conn: &mut diesel_async::AsyncPgConnection = &mut pooled;
        let max = policy.max_backoff_seconds;
        // Both or neither: an attempt refused for one subject is not counted against the other.
        conn.transaction(async |conn: &mut diesel_async::AsyncPgConnection| {
            for (subject, free) in [(&client, policy.free_per_client), (&account, policy.free_per_account)] {
                backoff::claim(conn, subject, free, max)
                    .await?
                    .map_err(|retry_after_seconds| AccountError::Backoff { retry_after_seconds })?;
            }
            Ok::<_, AccountError>(())
        })
        .await?;
        store::find_by_email(conn, &email).await?
    };
    // Verify against a real hash even for unknown emails, so timing does not reveal accounts.
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let matches = password::verify(credentials.password, stored).await?;
    match user {
        Some(user) if matches => {
            let mut conn = pool.get().await.map_err(AccountError::Unavailable)?;
            backoff::succeeded(&mut conn, &account, &client).await?;
            Ok(access_token(keys, &user)?)
        }
        _ => Err(AccountError::InvalidCredentials),
    }
}

/// A token for `user`, carrying its current session version.
pub fn access_token(keys: &TokenKeys, user: &User) -> Result<AccessToken, AccountError> {
    let subject = platform::auth::Subject {
        id: user.id,
        email: &user.email,
        name: &user.name,
        role: user.role(),
        session_version: user.session_version,
    };
    Ok(AccessToken {
        access_token: keys.issue(&subject)?,
        token_type: "Bearer",
        expires_in: keys.ttl_seconds,
    })
}

/// Creates the admin named by the settings when no account has that email; an existing
/// account is never changed.
pub async fn ensure_admin(
    conn: &mut diesel_async::AsyncPgConnection,
    email: &str,
    password: &str,
    name: &str,
) -> Result<bool, AccountError> {
    if store::find_by_email(conn, &normalise_email(email)).await?.is_some() {
        return Ok(false);
    }
    let registration =
        Registration { email: email.to_owned(), password: password.to_owned(), name: name.to_owned() };
    register(conn, registration, Role::Admin).await?;
    Ok(true)
}
