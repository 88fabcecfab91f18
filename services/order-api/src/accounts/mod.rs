//! Accounts: who may call the API. Customers register themselves; admins come from the
//! `BOOTSTRAP_ADMIN_*` settings or `order-api create-admin`, never from a default password.

pub mod password;
pub mod store;

use password::{PasswordError, check_policy};
use platform::auth::{Role, TokenKeys};
use platform::problem::FieldError;
use serde::{Deserialize, Serialize};
use store::User;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("invalid registration")]
    Invalid(Vec<FieldError>),
    #[error("an account with this email exists")]
    EmailTaken,
    #[error("wrong email or password")]
    InvalidCredentials,
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
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
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<User> for Profile {
    fn from(user: User) -> Self {
        Self {
            role: user.role(),
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

fn validate(registration: &Registration) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let email = normalise_email(&registration.email);
    if !crate::domain::new_order::is_plausible_email(&email) {
        errors.push(FieldError::new("email", "must be a valid email address"));
    }
    let name = registration.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        errors.push(FieldError::new("name", "must be 1 to 200 characters"));
    }
    if let Err(reason) = check_policy(&registration.password, &email) {
        errors.push(FieldError::new("password", reason));
    }
    errors
}

/// Creates an account with `role`. Hashing runs on a blocking thread (argon2 is deliberately slow).
pub async fn register(
    conn: &mut diesel_async::AsyncPgConnection,
    registration: Registration,
    role: Role,
) -> Result<Profile, AccountError> {
    let errors = validate(&registration);
    if !errors.is_empty() {
        return Err(AccountError::Invalid(errors));
    }
    let email = normalise_email(&registration.email);
    if store::find_by_email(conn, &email).await?.is_some() {
        return Err(AccountError::EmailTaken);
    }
    let hash = password::hash(registration.password).await?;
    let user = store::insert(conn, &email, registration.name.trim(), &hash, role)
        .await?
        .ok_or(AccountError::EmailTaken)?;
    Ok(user.into())
}

pub async fn login(
    conn: &mut diesel_async::AsyncPgConnection,
    keys: &TokenKeys,
    credentials: Credentials,
) -> Result<AccessToken, AccountError> {
    let user = store::find_by_email(conn, &normalise_email(&credentials.email)).await?;
    // Verify against a real hash even for unknown emails, so timing does not reveal accounts.
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let matches = password::verify(credentials.password, stored).await?;
    match user {
        Some(user) if matches => Ok(AccessToken {
            access_token: keys.issue(user.id, &user.email, &user.name, user.role()),
            token_type: "Bearer",
            expires_in: keys.ttl_seconds,
        }),
        _ => Err(AccountError::InvalidCredentials),
    }
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
