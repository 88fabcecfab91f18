//! Stripe's callback signatures: `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>.<raw body>">`, checked in constant time and within a timestamp tolerance.

use hmac::{KeyInit, Mac};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

pub const HEADER: &str = "stripe-signature";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the callback is not signed")]
    Missing,
    #[error("the signature header is malformed")]
    Malformed,
    #[error("the signature does not match")]
    Mismatch,
    #[error("the signature timestamp is outside the tolerance")]
    Stale,
}

pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).map(|mac| hex::encode(mac.finalize().into_bytes()));
    format!("t={timestamp},v1={}", digest.unwrap_or_default())
}

pub fn verify(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    now: i64,
    tolerance_seconds: i64,
) -> Result<(), SignatureError> {
    let header = header.filter(|h| !h.trim().is_empty()).ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => {
                candidates.push(hex::decode(value).map_err(|_| SignatureError::Malformed)?)
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let matches = candidates
        .iter()
        .any(|candidate| mac(secret, timestamp, body).is_some_and(|mac| mac.verify_slice(candidate).is_ok()));
    if !matches {
        return Err(SignatureError::Mismatch);
    }
    if (now - timestamp).abs() > tolerance_seconds {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

/// HMAC takes keys of any length, so this is always `Some`.
fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    Some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test";

    #[test]
    fn a_fresh_signature_verifies_and_anything_else_does_not() {
        let body = br#"{"id":"evt_1"}"#;
        let header = sign(SECRET, 1_000, body);
        assert_eq!(verify(SECRET, Some(&header), body, 1_100, 300), Ok(()));
        assert_eq!(verify(SECRET, Some(&header), b"{}", 1_100, 300), Err(SignatureError::Mismatch));
        assert_eq!(verify("whsec_other", Some(&header), body, 1_100, 300), Err(SignatureError::Mismatch));
        assert_eq!(verify(SECRET, Some(&header), body, 2_000, 300), Err(SignatureError::Stale));
        assert_eq!(verify(SECRET, None, body, 1_000, 300), Err(SignatureError::Missing));
        assert_eq!(verify(SECRET, Some("t=1000"), body, 1_000, 300), Err(SignatureError::Malformed));
        assert_eq!(verify(SECRET, Some("t=1000,v1=zz"), body, 1_000, 300), Err(SignatureError::Malformed));
    }

    #[test]
    fn one_matching_v1_among_several_is_enough() {
        let body = b"{}";
        let good = sign(SECRET, 5, body);
        let header = format!("t=5,v1={},{}", "ab".repeat(32), good.trim_start_matches("t=5,"));
        assert_eq!(verify(SECRET, Some(&header), body, 5, 300), Ok(()));
    }
}
