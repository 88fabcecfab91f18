//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>): the receiver recomputes
//! `HMAC-SHA256(secret, "{id}.{timestamp}.{body}")` and compares, which proves the body came
//! from us, unaltered, and (with the timestamp) recently. Pure functions, no I/O.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub const SECRET_PREFIX: &str = "whsec_";
pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// The spec allows 24 to 64 bytes of key; 24 is what common libraries issue.
const SECRET_BYTES: usize = 24;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the secret must be `whsec_` followed by base64")]
    MalformedSecret,
    #[error("no `v1` signature in the header matches")]
    Mismatch,
}

/// A fresh endpoint secret. `rand::rng()` is a CSPRNG seeded from the OS, fit for keys.
pub fn generate_secret() -> String {
    let bytes: [u8; SECRET_BYTES] = rand::random();
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

fn mac(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<Hmac<Sha256>, SignatureError> {
    let encoded = secret.strip_prefix(SECRET_PREFIX).ok_or(SignatureError::MalformedSecret)?;
    let key = STANDARD.decode(encoded).map_err(|_| SignatureError::MalformedSecret)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| SignatureError::MalformedSecret)?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(mac)
}

/// The `webhook-signature` header value: `v1,<base64 signature>`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignatureError> {
    let tag = mac(secret, id, timestamp, body)?.finalize().into_bytes();
    Ok(format!("v1,{}", STANDARD.encode(tag)))
}

/// The three headers of a signed request, ready to send.
pub fn headers(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<[(&'static str, String); 3], SignatureError> {
    Ok([
        (ID_HEADER, id.to_owned()),
        (TIMESTAMP_HEADER, timestamp.to_string()),
        (SIGNATURE_HEADER, sign(secret, id, timestamp, body)?),
    ])
}

/// The headers of a request signed with every secret in `secrets` (the current one, and during
/// a rotation the previous one): one space-separated `v1,…` per secret, as the spec allows.
pub fn headers_for_all(
    secrets: &[&str],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<[(&'static str, String); 3], SignatureError> {
    let signatures =
        secrets.iter().map(|secret| sign(secret, id, timestamp, body)).collect::<Result<Vec<_>, _>>()?;
    Ok([
        (ID_HEADER, id.to_owned()),
        (TIMESTAMP_HEADER, timestamp.to_string()),
        (SIGNATURE_HEADER, signatures.join(" ")),
    ])
}

/// Checks a `webhook-signature` header as a receiver would: it may carry several
/// space-separated signatures (during secret rotation); one valid `v1` one is enough. The
/// comparison is constant-time. Checking the timestamp's age is left to the caller.
pub fn verify(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
) -> Result<(), SignatureError> {
    let expected = mac(secret, id, timestamp, body)?;
    let matches = header
        .split(' ')
        .filter_map(|candidate| candidate.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .any(|tag| expected.clone().verify_slice(&tag).is_ok());
    if matches { Ok(()) } else { Err(SignatureError::Mismatch) }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example published with the Standard Webhooks specification.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn the_spec_example_signs_to_the_published_signature() {
        assert_eq!(sign(SECRET, ID, TIMESTAMP, BODY), Ok(SIGNATURE.to_owned()));
    }

    #[test]
    fn verify_accepts_the_spec_example_and_rejects_any_change() {
        assert_eq!(verify(SECRET, ID, TIMESTAMP, BODY, SIGNATURE), Ok(()));
        assert_eq!(verify(SECRET, ID, TIMESTAMP, BODY, &format!("v1,bm9wZQ== {SIGNATURE}")), Ok(()));
        assert_eq!(verify(SECRET, ID, TIMESTAMP + 1, BODY, SIGNATURE), Err(SignatureError::Mismatch));
        assert_eq!(verify(SECRET, "msg_other", TIMESTAMP, BODY, SIGNATURE), Err(SignatureError::Mismatch));
        assert_eq!(
            verify(SECRET, ID, TIMESTAMP, br#"{"test": 1}"#, SIGNATURE),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, ID, TIMESTAMP, BODY, "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn headers_carry_id_timestamp_and_signature() {
        let headers = headers(SECRET, ID, TIMESTAMP, BODY).map_err(|e| e.to_string());
        assert_eq!(
            headers,
            Ok([
                (ID_HEADER, ID.to_owned()),
                (TIMESTAMP_HEADER, "1614265330".to_owned()),
                (SIGNATURE_HEADER, SIGNATURE.to_owned())
            ])
        );
    }

    #[test]
    fn during_a_rotation_both_secrets_sign_and_each_verifies() {
        let new = generate_secret();
        let headers = headers_for_all(&[&new, SECRET], ID, TIMESTAMP, BODY).map_err(|e| e.to_string());
        let signature = headers.map(|h| h[2].1.clone()).unwrap_or_default();
        assert_eq!(signature.split(' ').count(), 2);
        assert!(signature.ends_with(SIGNATURE));
        assert_eq!(verify(&new, ID, TIMESTAMP, BODY, &signature), Ok(()));
        assert_eq!(verify(SECRET, ID, TIMESTAMP, BODY, &signature), Ok(()));
    }

    #[test]
    fn generated_secrets_are_24_random_bytes_and_usable() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_ne!(a, b);
        let decoded = a.strip_prefix(SECRET_PREFIX).map(|s| STANDARD.decode(s).map(|k| k.len()));
        assert!(matches!(decoded, Some(Ok(SECRET_BYTES))));
        let signature = sign(&a, ID, TIMESTAMP, BODY).unwrap_or_default();
        assert_eq!(verify(&a, ID, TIMESTAMP, BODY, &signature), Ok(()));
        assert_eq!(verify(&b, ID, TIMESTAMP, BODY, &signature), Err(SignatureError::Mismatch));
    }

    #[test]
    fn malformed_secrets_are_refused() {
        assert_eq!(
            sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", ID, TIMESTAMP, BODY),
            Err(SignatureError::MalformedSecret)
        );
        assert_eq!(sign("whsec_not base64!", ID, TIMESTAMP, BODY), Err(SignatureError::MalformedSecret));
    }
}
