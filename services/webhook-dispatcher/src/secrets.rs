//! Endpoint signing secrets at rest. A database dump, a backup or a read-only SQL injection
//! must not yield the secrets that let anyone forge our webhooks, so each secret is sealed with
//! AES-256-GCM under a key from the settings (`WEBHOOK_SECRET_KEY`), with a fresh random nonce
//! and the endpoint's id as associated data (a sealed secret copied onto another endpoint does
//! not open). The stored form names the key that sealed it, `v1.<key id>.<base64(nonce ‖
//! ciphertext ‖ tag)>`, so keys rotate: older keys (`WEBHOOK_SECRET_OLD_KEYS`) still open,
//! new writes use the current key, and start-up re-seals every row under the current key.
//! Pure functions but for [`local_key`], which keeps `make run` free of configuration.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use std::fmt;
use uuid::Uuid;

const VERSION: &str = "v1";
const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 12;
/// Secrets stored before sealing existed: `whsec_…` as issued.
const PLAINTEXT_PREFIX: &str = crate::signing::SECRET_PREFIX;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("is not 32 bytes of base64 (make one with `openssl rand -base64 32`)")]
    BadKey,
    #[error(
        "was sealed with key `{found}`, which is neither the current key (`{current}`) nor one of \
         the old keys; start with the key it was sealed with (WEBHOOK_SECRET_KEY, or listed in \
         WEBHOOK_SECRET_OLD_KEYS)"
    )]
    UnknownKey { found: String, current: String },
    #[error("is not a sealed secret (`v1.<key id>.<base64>`)")]
    Malformed,
    #[error("does not open under key `{0}`: the row was altered or belongs to another endpoint")]
    Undecryptable(String),
}

/// One AES-256 key and its id: the first 6 bytes of its SHA-256, in hex. The id names the key
/// in stored secrets and in errors without revealing it.
#[derive(Clone)]
pub struct Key {
    id: String,
    cipher: Aes256Gcm,
}

impl Key {
    pub fn from_base64(text: &str) -> Result<Self, SealError> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| SealError::BadKey)?;
        if bytes.len() != KEY_BYTES {
            return Err(SealError::BadKey);
        }
        let digest = Sha256::digest(&bytes);
        let id = hex::encode(&digest[..6]);
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| SealError::BadKey)?;
        Ok(Self { id, cipher })
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.id)
    }
}

/// The current key, which seals, and the old ones, which only open.
#[derive(Debug, Clone)]
pub struct Keyring {
    current: Key,
    old: Vec<Key>,
}

fn associated_data(endpoint: Uuid) -> Vec<u8> {
    let mut aad = b"webhook-endpoint-secret:".to_vec();
    aad.extend_from_slice(endpoint.as_bytes());
    aad
}

impl Keyring {
    pub fn new(current: Key, old: Vec<Key>) -> Self {
        Self { current, old }
    }

    pub fn current_id(&self) -> &str {
        self.current.id()
    }

    /// `secret` sealed under the current key for `endpoint`.
    pub fn seal(&self, endpoint: Uuid, secret: &str) -> String {
        // A 96-bit random nonce per secret: collisions need ~2^48 seals under one key, far
        // beyond the number of endpoints and rotations a key ever sees.
        let nonce_bytes: [u8; NONCE_BYTES] = rand::random();
        let nonce = aes_gcm::Nonce::from(nonce_bytes);
        let aad = associated_data(endpoint);
        // Encryption fails only for messages or AAD beyond GCM's ~64 GiB limit.
        let sealed = self
            .current
            .cipher
            .encrypt(&nonce, Payload { msg: secret.as_bytes(), aad: &aad })
            .unwrap_or_default();
        let mut body = nonce_bytes.to_vec();
        body.extend_from_slice(&sealed);
        format!("{VERSION}.{}.{}", self.current.id, URL_SAFE_NO_PAD.encode(body))
    }

    /// The secret in `stored` (sealed for `endpoint`). A plaintext `whsec_…` left from before
    /// sealing (an older replica during a rolling upgrade) is taken as is; start-up seals it.
    pub fn open(&self, endpoint: Uuid, stored: &str) -> Result<String, SealError> {
        if stored.starts_with(PLAINTEXT_PREFIX) {
            return Ok(stored.to_owned());
        }
        let mut parts = stored.splitn(3, '.');
        let (Some(VERSION), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SealError::Malformed);
        };
        let key =
            std::iter::once(&self.current).chain(&self.old).find(|k| k.id == key_id).ok_or_else(|| {
                SealError::UnknownKey { found: key_id.to_owned(), current: self.current.id.clone() }
            })?;
        let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| SealError::Malformed)?;
        let (nonce, ciphertext) = body.split_at_checked(NONCE_BYTES).ok_or(SealError::Malformed)?;
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SealError::Malformed)?;
        let aad = associated_data(endpoint);
        let opened = key
            .cipher
            .decrypt(&aes_gcm::Nonce::from(nonce), Payload { msg: ciphertext, aad: &aad })
            .map_err(|_| SealError::Undecryptable(key.id.clone()))?;
        String::from_utf8(opened).map_err(|_| SealError::Malformed)
    }

    /// Whether `stored` is sealed under the current key (nothing to re-seal).
    pub fn is_current(&self, stored: &str) -> bool {
        stored
            .strip_prefix(VERSION)
            .and_then(|rest| rest.strip_prefix('.'))
            .is_some_and(|rest| rest.split_once('.').is_some_and(|(key_id, _)| key_id == self.current.id))
    }

    /// The SQL `LIKE` pattern of values sealed under the current key.
    pub fn current_pattern(&self) -> String {
        format!("{VERSION}.{}.%", self.current.id)
    }
}

/// The key in `path`, created (32 random bytes, base64, mode 0600) by the first start, so
/// `make run` needs no configuration and no key is ever committed. A deployment sets
/// `WEBHOOK_SECRET_KEY` instead and turns this off (an empty file setting): replicas must
/// share one key, and a key lost with a container's disk loses every endpoint's secret.
pub fn local_key(path: &str) -> Result<Key, String> {
    let error = |e: std::io::Error| format!("cannot read or create `{path}`: {e}");
    let read = |text: String| Key::from_base64(&text).map_err(|e| format!("`{path}` {e}"));
    if let Ok(existing) = std::fs::read_to_string(path) {
        return read(existing);
    }
    if let Some(parent) = std::path::Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(error)?;
    }
    let fresh = STANDARD.encode(rand::random::<[u8; KEY_BYTES]>());
    if platform::private_file::create_new(std::path::Path::new(path), fresh.as_bytes()).map_err(error)? {
        return read(fresh);
    }
    // Another replica on this machine created it between our read and our create.
    std::fs::read_to_string(path).map_err(error).and_then(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> Key {
        Key::from_base64(&STANDARD.encode([byte; KEY_BYTES])).unwrap_or_else(|_| unreachable!())
    }

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn security_webhooks_a_sealed_secret_hides_the_secret_and_opens_again() {
        let ring = Keyring::new(key(1), vec![]);
        let endpoint = Uuid::now_v7();
        let (a, b) = (ring.seal(endpoint, SECRET), ring.seal(endpoint, SECRET));
        assert!(!a.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") && !a.contains("whsec_"), "{a}");
        assert_ne!(a, b, "a fresh nonce per seal");
        assert!(a.starts_with(&format!("v1.{}.", ring.current_id())));
        assert_eq!(ring.open(endpoint, &a), Ok(SECRET.to_owned()));
        assert_eq!(ring.open(endpoint, &b), Ok(SECRET.to_owned()));
        assert!(ring.is_current(&a));
    }

    #[test]
    fn security_webhooks_a_sealed_secret_does_not_open_for_another_endpoint_or_altered() {
        let ring = Keyring::new(key(1), vec![]);
        let endpoint = Uuid::now_v7();
        let sealed = ring.seal(endpoint, SECRET);
        let id = ring.current_id().to_owned();
        assert_eq!(ring.open(Uuid::now_v7(), &sealed), Err(SealError::Undecryptable(id.clone())));
        let mut altered = sealed.clone().into_bytes();
        if let Some(last) = altered.last_mut() {
            *last = if *last == b'A' { b'B' } else { b'A' };
        }
        let altered = String::from_utf8(altered).unwrap_or_default();
        assert!(ring.open(endpoint, &altered).is_err());
        assert_eq!(ring.open(endpoint, "v2.x.y"), Err(SealError::Malformed));
        assert_eq!(ring.open(endpoint, "garbage"), Err(SealError::Malformed));
    }

    #[test]
    fn security_webhooks_after_a_rotation_old_keys_open_and_only_the_new_key_seals() {
        let endpoint = Uuid::now_v7();
        let before = Keyring::new(key(1), vec![]);
        let sealed_before = before.seal(endpoint, SECRET);
        let after = Keyring::new(key(2), vec![key(1)]);
        assert_ne!(after.current_id(), before.current_id());
        assert_eq!(after.open(endpoint, &sealed_before), Ok(SECRET.to_owned()));
        assert!(!after.is_current(&sealed_before));
        let resealed = after.seal(endpoint, SECRET);
        assert!(after.is_current(&resealed));
        assert!(resealed.starts_with(&format!("v1.{}.", after.current_id())));
        // The old key alone cannot open what the new one sealed.
        assert!(matches!(before.open(endpoint, &resealed), Err(SealError::UnknownKey { .. })));
    }

    #[test]
    fn security_webhooks_a_wrong_key_says_which_key_the_secret_needs() {
        let endpoint = Uuid::now_v7();
        let sealed = Keyring::new(key(1), vec![]).seal(endpoint, SECRET);
        let wrong = Keyring::new(key(3), vec![]);
        let error = wrong.open(endpoint, &sealed).map_err(|e| e.to_string());
        let message = error.err().unwrap_or_default();
        assert!(message.contains(key(1).id()) && message.contains("WEBHOOK_SECRET_KEY"), "{message}");
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64_and_plaintext_secrets_open_as_is() {
        assert_eq!(Key::from_base64("c2hvcnQ=").map(|_| ()), Err(SealError::BadKey));
        assert_eq!(Key::from_base64("not base64!").map(|_| ()), Err(SealError::BadKey));
        assert!(!format!("{:?}", key(1)).contains(&STANDARD.encode([1u8; KEY_BYTES])));
        let ring = Keyring::new(key(1), vec![]);
        assert_eq!(ring.open(Uuid::now_v7(), SECRET), Ok(SECRET.to_owned()));
        assert!(!ring.is_current(SECRET));
    }

    #[test]
    fn a_local_key_file_is_created_once_and_read_back() {
        let path = std::env::temp_dir().join(format!("webhook-key-{}/key", Uuid::new_v4()));
        let path = path.to_string_lossy().into_owned();
        let first = local_key(&path).map(|k| k.id().to_owned());
        assert!(first.is_ok(), "{first:?}");
        assert_eq!(local_key(&path).map(|k| k.id().to_owned()), first);
        if let Some(dir) = std::path::Path::new(&path).parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
