//! Password policy and hashing (argon2id with the crate's default parameters).

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

const MIN_LENGTH: usize = 12;
const MAX_LENGTH: usize = 128;
const COMMON: &[&str] =
    &["password1234", "123456789012", "qwertyuiopas", "passwordpassword", "adminadminadmin"];

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct PasswordError(String);

/// Why a password is refused, in words the user can act on.
pub fn check_policy(password: &str, email: &str) -> Result<(), String> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(format!("must be at least {MIN_LENGTH} characters"));
    }
    if length > MAX_LENGTH {
        return Err(format!("must be at most {MAX_LENGTH} characters"));
    }
    let lower = password.to_lowercase();
    if COMMON.contains(&lower.as_str()) || password.chars().all(|c| password.starts_with(c)) {
        return Err("is too easy to guess".into());
    }
    let local = email.split('@').next().unwrap_or_default();
    if local.len() >= 4 && lower.contains(&local.to_lowercase()) {
        return Err("must not contain your email address".into());
    }
    Ok(())
}

pub async fn hash(password: String) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| PasswordError(e.to_string()))
    })
    .await
    .map_err(|e| PasswordError(e.to_string()))?
}

/// A fixed hash to verify against when the account does not exist (same cost as a real check).
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Kk4hL7BaF8q+Kx9Qz5b0Ue8o5m3m0m8t3yZr8mJc1sQ";

pub async fn verify(password: String, stored: Option<String>) -> Result<bool, PasswordError> {
    let known = stored.is_some();
    tokio::task::spawn_blocking(move || {
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let parsed = PasswordHash::new(&stored).map_err(|e| PasswordError(e.to_string()))?;
        // Always run the check (no short-circuit), so unknown accounts cost the same time.
        let matches = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        Ok(known && matches)
    })
    .await
    .map_err(|e| PasswordError(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_explains_each_refusal() {
        assert_eq!(check_policy("short", "a@b.co"), Err("must be at least 12 characters".into()));
        assert_eq!(check_policy(&"x".repeat(129), "a@b.co"), Err("must be at most 128 characters".into()));
        assert_eq!(check_policy("Password1234", "a@b.co"), Err("is too easy to guess".into()));
        assert_eq!(check_policy("aaaaaaaaaaaaaa", "a@b.co"), Err("is too easy to guess".into()));
        assert_eq!(
            check_policy("lovelace-rules-42", "lovelace@b.co"),
            Err("must not contain your email address".into())
        );
        assert_eq!(check_policy("correct horse battery", "ada@b.co"), Ok(()));
    }

    #[tokio::test]
    async fn hashes_verify_only_their_password() {
        let hash = hash("correct horse battery".into()).await.unwrap_or_default();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify("correct horse battery".into(), Some(hash.clone())).await.unwrap_or(false));
        assert!(!verify("wrong horse battery".into(), Some(hash)).await.unwrap_or(true));
        assert!(!verify("anything".into(), None).await.unwrap_or(true), "unknown accounts never match");
    }
}
