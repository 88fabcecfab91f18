//! Key material for bearer tokens: an Ed25519 signing key (the gateway's only) and the public
//! keys every service verifies with, published as a JWK set.
//!
//! Why EdDSA and configured public keys rather than a shared secret: with HS256 every service
//! that can verify a token can also mint one, so taking the internet-facing webhook dispatcher
//! was enough to forge an admin token. With Ed25519 only the gateway holds the private key.
//! The other services get the public keys from their configuration (`JWT_PUBLIC_KEYS`, a JWK
//! set) instead of fetching `/.well-known/jwks.json` at run time: the network between services
//! is not trusted (docs/security.md), and a key fetched over it could be swapped by whoever
//! controls it; a fetch would also make every service's start-up depend on the gateway.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use sha2::{Digest, Sha256};
use std::path::Path;

use crate::settings::Secret;

/// PKCS#8 v1 header of an Ed25519 private key; the 32-byte seed follows (RFC 8410).
const PKCS8_ED25519_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "JWT_SIGNING_KEY is not an Ed25519 private key in PKCS#8 PEM (`openssl genpkey -algorithm ed25519`): {0}"
    )]
    SigningKey(String),
    #[error(
        "JWT_PUBLIC_KEYS is not a JWK set of Ed25519 keys (`{{\"keys\":[{{\"kty\":\"OKP\",...}}]}}`): {0}"
    )]
    PublicKeys(String),
    #[error("JWT_PUBLIC_KEYS holds no key; give it the gateway's keys (GET /.well-known/jwks.json)")]
    NoPublicKey,
    #[error(
        "JWT_SIGNING_KEY is set on {service}, but only order-api signs tokens; give {service} JWT_PUBLIC_KEYS instead"
    )]
    NotTheIssuer { service: String },
    #[error("cannot read or create the local key file {path}: {source}")]
    File { path: String, source: std::io::Error },
    #[error("this service verifies tokens but holds no signing key")]
    CannotSign,
}

/// The gateway's private key, with the id its tokens carry in the `kid` header.
#[derive(Clone)]
pub struct SigningKey {
    pub(crate) kid: String,
    pub(crate) encoding: EncodingKey,
    pub(crate) public: Jwk,
}

impl SigningKey {
    /// From a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as `openssl genpkey -algorithm ed25519`
    /// writes it.
    /// Newlines may be written as `\n` (one-line `.env` values, `order-api jwt-keys`).
    pub fn from_pem(pem: &Secret) -> Result<Self, KeyError> {
        let pem = pem.expose().replace("\\n", "\n");
        let encoding = EncodingKey::from_ed_pem(pem.as_bytes())
            .map_err(|error| KeyError::SigningKey(error.to_string()))?;
        let mut public = Jwk::from_encoding_key(&encoding, Algorithm::EdDSA)
            .map_err(|error| KeyError::SigningKey(error.to_string()))?;
        let kid = thumbprint(&public).map_err(KeyError::SigningKey)?;
        public.common.key_id = Some(kid.clone());
        public.common.public_key_use = Some(PublicKeyUse::Signature);
        public.common.key_algorithm = Some(KeyAlgorithm::EdDSA);
        Ok(Self { kid, encoding, public })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half as a JWK (with `kid`, `use` and `alg`).
    pub fn public_jwk(&self) -> &Jwk {
        &self.public
    }
}

/// A fresh Ed25519 private key as PKCS#8 PEM (for `make run`'s local key and for tests).
/// `rand::random` draws from a CSPRNG seeded by the operating system.
pub fn generate_signing_key_pem() -> Secret {
    let seed: [u8; 32] = rand::random();
    let mut der = PKCS8_ED25519_PREFIX.to_vec();
    der.extend_from_slice(&seed);
    let body = STANDARD.encode(&der);
    Secret::new(format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"))
}

/// One public key a service accepts signatures from.
#[derive(Clone)]
pub struct VerifyingKey {
    pub(crate) kid: String,
    pub(crate) decoding: DecodingKey,
    pub(crate) jwk: Jwk,
}

impl VerifyingKey {
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        let AlgorithmParameters::OctetKeyPair(params) = &jwk.algorithm else {
            return Err(KeyError::PublicKeys("only OKP (Ed25519) keys are accepted".into()));
        };
        if !matches!(params.curve, jsonwebtoken::jwk::EllipticCurve::Ed25519) {
            return Err(KeyError::PublicKeys("only the Ed25519 curve is accepted".into()));
        }
        let raw = URL_SAFE_NO_PAD.decode(&params.x).map_err(|e| KeyError::PublicKeys(e.to_string()))?;
        if raw.len() != 32 {
            return Err(KeyError::PublicKeys("an Ed25519 public key has 32 bytes".into()));
        }
        let decoding = DecodingKey::from_jwk(jwk).map_err(|e| KeyError::PublicKeys(e.to_string()))?;
        let kid = thumbprint(jwk).map_err(KeyError::PublicKeys)?;
        // A `kid` given in the set must be the key's thumbprint: the gateway always writes it
        // that way, and a mismatch means the set was edited by hand wrongly.
        if let Some(given) = &jwk.common.key_id
            && *given != kid
        {
            return Err(KeyError::PublicKeys(format!("kid `{given}` is not the key's thumbprint `{kid}`")));
        }
        let mut jwk = jwk.clone();
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(KeyAlgorithm::EdDSA);
        Ok(Self { kid, decoding, jwk })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }
}

/// Parses a JWK set (`{"keys":[...]}`) into verifying keys; an empty set is refused.
pub fn parse_public_keys(json: &str) -> Result<Vec<VerifyingKey>, KeyError> {
    let set: JwkSet = serde_json::from_str(json).map_err(|e| KeyError::PublicKeys(e.to_string()))?;
    let keys = set.keys.iter().map(VerifyingKey::from_jwk).collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(KeyError::NoPublicKey);
    }
    Ok(keys)
}

/// A JWK set of `keys`, as `/.well-known/jwks.json` and `JWT_PUBLIC_KEYS` carry it.
pub fn jwk_set<'a>(keys: impl IntoIterator<Item = &'a Jwk>) -> JwkSet {
    JwkSet { keys: keys.into_iter().cloned().collect() }
}

/// The RFC 7638 thumbprint of an Ed25519 JWK: a stable `kid` that needs no configuration and
/// changes whenever the key does.
fn thumbprint(jwk: &Jwk) -> Result<String, String> {
    let AlgorithmParameters::OctetKeyPair(params) = &jwk.algorithm else {
        return Err("not an OKP key".into());
    };
    // Required members only, in lexicographic order, no whitespace (RFC 7638 §3.2).
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, params.x);
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

/// The local key pair of a one-machine set-up (`make run`): `<dir>/signing.pem` (mode 0600)
/// and `<dir>/jwks.json`, created by whichever service starts first. Only order-api reads the
/// private half; the others read `jwks.json`. Nothing is ever committed.
pub struct LocalKeys {
    pub signing_pem: Secret,
    pub public_jwks: String,
}

pub fn local_keys(dir: &str) -> Result<LocalKeys, KeyError> {
    let private = Path::new(dir).join("signing.pem");
    let public = Path::new(dir).join("jwks.json");
    let error = |path: &Path| {
        let path = path.display().to_string();
        move |source| KeyError::File { path, source }
    };
    std::fs::create_dir_all(dir).map_err(error(Path::new(dir)))?;
    let pem = match read_pem(&private).map_err(error(&private))? {
        Some(pem) => pem,
        None => create_private(&private).map_err(error(&private))?,
    };
    let key = SigningKey::from_pem(&pem)?;
    let jwks = serde_json::to_string_pretty(&jwk_set([key.public_jwk()])).unwrap_or_default();
    // Rewritten on every start, so it always matches the private key next to it; written to a
    // temporary file and renamed, so a service starting alongside never reads half a file.
    let current = std::fs::read_to_string(&public).unwrap_or_default();
    if current.trim() != jwks.trim() {
        let temporary = Path::new(dir).join(format!("jwks.json.{}", uuid::Uuid::new_v4().simple()));
        std::fs::write(&temporary, &jwks).map_err(error(&temporary))?;
        std::fs::rename(&temporary, &public).map_err(error(&public))?;
    }
    Ok(LocalKeys { signing_pem: pem, public_jwks: jwks })
}

fn read_pem(path: &Path) -> std::io::Result<Option<Secret>> {
    match std::fs::read_to_string(path) {
        Ok(pem) if pem.contains("-----END PRIVATE KEY-----") => Ok(Some(Secret::new(pem))),
        // Being written by a service starting at the same moment: wait for it below.
        Ok(_) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn create_private(path: &Path) -> std::io::Result<Secret> {
    let pem = generate_signing_key_pem();
    if crate::private_file::create_new(path, pem.expose().as_bytes())? {
        return Ok(pem);
    }
    // Another service created it between our read and our create: use theirs, once it is
    // complete (a PEM is written in one small write, so this is a few milliseconds).
    for _ in 0..100 {
        if let Some(pem) = read_pem(path)? {
            return Ok(pem);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(std::io::Error::other("the key file stays incomplete; delete it to start afresh"))
}
