//! Proving an account reads its email, and resetting a forgotten password, both by a
//! single-use expiring token sent through the notifier.
//!
//! The token travels in the event (`account.registered`, `account.password_reset_requested`)
//! because the notifier must email it and no service calls another; it is wrapped so `Debug`
//! never prints it, no webhook receiver is sent these events, and order-api keeps only its
//! hash (docs/security.md, "Account tokens").

use super::tokens::{self, Purpose};
use super::{AccountError, PreparedAccount, Profile, backoff, normalise_email, password, store};
use crate::OUTBOX;
use contracts::Event;
use contracts::events::{AccountRegistered, PasswordResetRequested, SecretLink};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use platform::auth::{Role, TokenKeys};
use platform::db::PgPool;
use platform::validation::Violation;
use serde::Deserialize;

/// From the settings.
#[derive(Debug, Clone)]
pub struct AccountPolicy {
    /// Where the links in the emails point (`PUBLIC_BASE_URL`): `/verify-email?token=…` and
    /// `/reset-password?token=…`, pages of the shop's front end that POST the token here.
    pub public_base_url: String,
    pub verification_ttl: chrono::Duration,
    pub reset_ttl: chrono::Duration,
    /// Whether an account must have verified its email before it may order.
    pub require_verified_email: bool,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    /// The token from the verification email's link.
    pub token: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    pub email: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirmation {
    /// The token from the reset email's link.
    pub token: String,
    pub new_password: String,
}

/// Stores a customer's account and, in the same transaction, its verification token and the
/// `account.registered` event: the email goes out if and only if the account exists.
pub async fn register_customer(
    conn: &mut AsyncPgConnection,
    account: &PreparedAccount,
    policy: &AccountPolicy,
) -> Result<Profile, AccountError> {
    conn.transaction(async |conn: &mut AsyncPgConnection| {
        let user =
            store::insert(conn, &account.email, &account.name, &account.password_hash, Role::Customer, false)
                .await?
                .ok_or(AccountError::EmailTaken)?;
        let issued =
            tokens::issue(conn, user.id, Purpose::EmailVerification, policy.verification_ttl).await?;
        let registered = AccountRegistered {
            account_id: user.id,
            token_id: issued.id,
            email: user.email.clone(),
            name: user.name.clone(),
            verification_link: link(policy, "verify-email", &issued.secret),
            expires_at: issued.expires_at,
        };
        OUTBOX.enqueue(conn, &Event::AccountRegistered(registered)).await?;
        Ok::<_, AccountError>(user.into())
    })
    .await
}

fn link(policy: &AccountPolicy, page: &str, secret: &str) -> SecretLink {
    SecretLink::new(format!("{}/{page}?token={secret}", policy.public_base_url))
}

/// Spends a verification token and marks its account verified.
pub async fn verify(conn: &mut AsyncPgConnection, token: &str) -> Result<(), AccountError> {
    conn.transaction(async |conn: &mut AsyncPgConnection| {
        let user_id = tokens::spend(conn, token, Purpose::EmailVerification)
            .await?
            .ok_or(AccountError::InvalidToken)?;
        store::mark_verified(conn, user_id).await?;
        Ok::<_, AccountError>(())
    })
    .await
}

/// Refuses an account that must verify its email before ordering (when the policy says so).
pub async fn ensure_may_order(
    conn: &mut AsyncPgConnection,
    account: uuid::Uuid,
    policy: &AccountPolicy,
) -> Result<(), AccountError> {
    if policy.require_verified_email && !store::is_verified(conn, account).await? {
        return Err(AccountError::EmailNotVerified);
    }
    Ok(())
}

/// Emails a reset link when the address has an account; does nothing otherwise, and the caller
/// answers the same either way. Counted under the login backoff's rules (per address asked for,
/// known or not, and per client), so it cannot be used to flood a mailbox.
pub async fn request_reset(
    pool: &PgPool,
    request: ResetRequest,
    client: std::net::IpAddr,
    limits: backoff::LoginPolicy,
    policy: &AccountPolicy,
) -> Result<(), AccountError> {
    let email = normalise_email(&request.email);
    let mut pooled = pool.get().await.map_err(AccountError::Unavailable)?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    conn.transaction(async |conn: &mut AsyncPgConnection| {
        let subjects = [
            (backoff::Subject::ResetClient(client), limits.free_per_client),
            (backoff::Subject::ResetAccount(email.clone()), limits.free_per_account),
        ];
        for (subject, free) in &subjects {
            backoff::claim(conn, subject, *free, limits.max_backoff_seconds)
                .await?
                .map_err(|retry_after_seconds| AccountError::Backoff { retry_after_seconds })?;
        }
        let Some(user) = store::find_by_email(conn, &email).await? else {
            return Ok(());
        };
        let issued = tokens::issue(conn, user.id, Purpose::PasswordReset, policy.reset_ttl).await?;
        let requested = PasswordResetRequested {
            account_id: user.id,
            token_id: issued.id,
            email: user.email,
            name: user.name,
            reset_link: link(policy, "reset-password", &issued.secret),
            expires_at: issued.expires_at,
        };
        OUTBOX.enqueue(conn, &Event::PasswordResetRequested(requested)).await?;
        Ok::<_, AccountError>(())
    })
    .await
}

/// Sets the new password with a reset token, spends every reset token of the account, and
/// ends all its sessions (the password change raises the session version). The email was
/// proven on the way, so the account counts as verified too. No pooled connection is held
/// while argon2 runs.
pub async fn confirm_reset(
    pool: &PgPool,
    keys: &TokenKeys,
    confirmation: ResetConfirmation,
) -> Result<(), AccountError> {
    let user = {
        let mut conn = pool.get().await.map_err(AccountError::Unavailable)?;
        match tokens::holder(&mut conn, &confirmation.token, Purpose::PasswordReset).await? {
            Some(user_id) => store::find(&mut conn, user_id).await?,
            None => None,
        }
        .ok_or(AccountError::InvalidToken)?
    };
    if let Err(reason) = password::check_policy(&confirmation.new_password, &user.email) {
        return Err(AccountError::Invalid(vec![Violation::new("new_password", reason)]));
    }
    let hash = password::hash(confirmation.new_password).await?;
    let mut pooled = pool.get().await.map_err(AccountError::Unavailable)?;
    let conn: &mut AsyncPgConnection = &mut pooled;
    let version = conn
        .transaction(async |conn: &mut AsyncPgConnection| {
            // Spent here, not above: of two confirmations racing, one wins.
            let holder = tokens::spend(conn, &confirmation.token, Purpose::PasswordReset).await?;
            if holder != Some(user.id) {
                return Err(AccountError::InvalidToken);
            }
            tokens::spend_all(conn, user.id, Purpose::PasswordReset).await?;
            store::mark_verified(conn, user.id).await?;
            store::set_password_hash(conn, user.id, &hash).await?.ok_or(AccountError::InvalidToken)
        })
        .await?;
    keys.revocations().revoke(user.id, version);
    Ok(())
}
