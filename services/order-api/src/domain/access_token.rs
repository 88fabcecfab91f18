//! A guest order's access token: 256 random bits, shown to the guest once (the answer to
//! `POST /orders`, the invoice link) and stored only as its SHA-256. A fast hash suffices for a
//! random secret of this size: there is no dictionary to try.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new token, URL-safe (it travels in a query string) and its hash to store.
pub fn generate() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash(&token);
    (token, hash)
}

pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Whether `presented` is the token behind `stored`, comparing in constant time.
pub fn matches(presented: &str, stored: &[u8]) -> bool {
    let candidate = hash(presented);
    candidate.len() == stored.len()
        && candidate.iter().zip(stored).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_match_only_their_hash() {
        let (token, stored) = generate();
        let (other, _) = generate();
        assert_eq!(token.len(), 43, "256 bits in unpadded base64url");
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(token, other);
        assert!(matches(&token, &stored));
        assert!(!matches(&other, &stored));
        assert!(!matches("", &stored));
    }
}
