//! Ending sessions: logout and password change revoke every token of the account issued so far
//! (a role change does too, through the `users` trigger), and the gateway refuses such tokens
//! within [`REFRESH_EVERY`] on every replica, at once on the replica that made the change.
//!
//! Why a session version checked by the gateway, not a deny-list of token ids or short-lived
//! tokens with refresh: the version is one column, a logout ends every session of the account
//! (what a user who fears a stolen token wants), and the check is a lookup in a small in-memory
//! map (only accounts revoked within one token lifetime) refilled from PostgreSQL, so requests
//! never wait on the database for it. Short-lived tokens would need a refresh flow every client
//! must implement. The internal services do not check revocations: they are not reachable from
//! outside (network policies) and only act on admin tokens; see docs/security.md.

use super::{AccessToken, AccountError, access_token, password, store};
use platform::auth::{Claims, Revocations, TokenKeys};
use platform::db::PgPool;
use platform::validation::Violation;
use serde::Deserialize;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often each gateway replica reloads revocations made by the others.
pub const REFRESH_EVERY: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

async fn connection(pool: &PgPool) -> Result<platform::db::PooledConnection, AccountError> {
    pool.get().await.map_err(AccountError::Unavailable)
}

/// Revokes every token of the caller's account, the one in hand included.
pub async fn logout(pool: &PgPool, keys: &TokenKeys, caller: &Claims) -> Result<(), AccountError> {
    let mut conn = connection(pool).await?;
    if let Some(version) = store::revoke_sessions(&mut conn, caller.sub).await? {
        keys.revocations().revoke(caller.sub, version);
    }
    Ok(())
}

/// Checks the current password, stores the new one and revokes every older token; the answer
/// is a fresh token, so the client that changed it stays logged in. No pooled connection is
/// held while argon2 runs.
pub async fn change_password(
    pool: &PgPool,
    keys: &TokenKeys,
    caller: &Claims,
    change: PasswordChange,
) -> Result<AccessToken, AccountError> {
    let user = store::find(&mut *connection(pool).await?, caller.sub)
        .await?
        .ok_or(AccountError::InvalidCredentials)?;
    if let Err(reason) = password::check_policy(&change.new_password, &user.email) {
        return Err(AccountError::Invalid(vec![Violation::new("new_password", reason)]));
    }
    if !password::verify(change.current_password, Some(user.password_hash.clone())).await? {
        return Err(AccountError::Invalid(vec![Violation::new("current_password", "is not your password")]));
    }
    let hash = password::hash(change.new_password).await?;
    let mut conn = connection(pool).await?;
    let version =
        store::set_password_hash(&mut conn, user.id, &hash).await?.ok_or(AccountError::InvalidCredentials)?;
    keys.revocations().revoke(user.id, version);
    access_token(keys, &store::User { password_hash: hash, session_version: version, ..user })
}

/// Keeps `revocations` in step with the database: every [`REFRESH_EVERY`], the accounts revoked
/// within the last token lifetime (plus a margin for clock skew).
pub async fn refresh_revocations(
    pool: PgPool,
    revocations: Revocations,
    token_ttl_seconds: i64,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(REFRESH_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = cancel.cancelled() => return,
        }
        let since = chrono::Utc::now() - chrono::Duration::seconds(token_ttl_seconds + 60);
        let loaded = async {
            let mut conn = pool.get().await.map_err(|e| e.to_string())?;
            store::revoked_since(&mut conn, since).await.map_err(|e| e.to_string())
        }
        .await;
        match loaded {
            Ok(rows) => revocations.replace(rows.into_iter().collect()),
            // The previous map stays in force; the next tick tries again.
            Err(error) => tracing::warn!(%error, "cannot reload token revocations"),
        }
    }
}
