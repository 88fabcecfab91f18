//! Bearer tokens: the gateway (order-api) issues EdDSA (Ed25519) JWTs at login and is the only
//! holder of the private key; every service verifies them with the public keys only, and checks
//! the issuer and the audience, so an internal route is reachable only with valid credentials
//! even when called around the gateway, and taking a service does not let anyone mint tokens.
//!
//! Two audiences: customers' tokens (`JWT_AUDIENCE`, an hour) are accepted by the gateway alone,
//! which checks their revocation; for each request it forwards, it signs a token for the
//! internal audience (`<JWT_AUDIENCE>-internal`, 60 s) that only the services behind it accept.
//! So a revoked session ends everywhere within a minute without the services knowing about
//! revocation, a customer's token is worth nothing on a service's port, and an internal token
//! seen inside is refused by the gateway.
//! Key rotation: the verifying set holds several keys (chosen by the token's `kid`), so during a
//! rollover tokens signed by the old key and by the new one both verify (docs/operations.md).

mod keys;
mod revocation;

pub use keys::{
    KeyError, LocalKeys, SigningKey, VerifyingKey, generate_signing_key_pem, jwk_set, local_keys,
    parse_public_keys,
};
pub use revocation::Revocations;

use crate::problem::Problem;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use std::future::{Ready, ready};
use std::sync::Arc;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    /// The account's session version when the token was issued. Logout, a password change
    /// and a role change raise the account's version, which revokes every older token
    /// (checked by the gateway, see [`Revocations`]).
    #[serde(default)]
    pub sv: i64,
    /// Internal tokens only: the guest order whose access token the gateway checked; such a
    /// token names no account (`sub` is nil) and opens that order's data alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_order: Option<Uuid>,
}

/// How long an internal token lives: one forwarded request, with room for a slow upstream.
/// A revoked session can use the internal tokens already minted for at most this long.
pub const INTERNAL_TTL_SECONDS: i64 = 60;

/// Which of the two audiences a [`TokenKeys`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Tokens issued to users at login (`JWT_AUDIENCE`): the gateway.
    User,
    /// Tokens the gateway signs for one forwarded request (`<JWT_AUDIENCE>-internal`): every
    /// service behind the gateway.
    Internal,
}

/// Who issues tokens and for whom: checked on every token, so a token minted for another
/// deployment or purpose by the same key is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPolicy {
    pub issuer: String,
    pub audience: String,
    pub ttl_seconds: i64,
}

impl TokenPolicy {
    /// The audience of the tokens the gateway signs for the services behind it.
    pub fn internal_audience(&self) -> String {
        format!("{}-internal", self.audience)
    }
}

/// The account a token is issued to.
pub struct Subject<'a> {
    pub id: Uuid,
    pub email: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub session_version: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    #[error("the token names no key (`kid`) this service knows")]
    UnknownKey,
    #[error("the token was revoked (logout, password or role change); log in again")]
    Revoked,
}

/// The keys a service verifies tokens with, and on the gateway the key it signs with.
#[derive(Clone)]
pub struct TokenKeys {
    signing: Option<Arc<SigningKey>>,
    verifying: Arc<Vec<VerifyingKey>>,
    policy: Arc<TokenPolicy>,
    revocations: Revocations,
    accepts: Audience,
    pub ttl_seconds: i64,
    /// The lifetime of internal tokens ([`INTERNAL_TTL_SECONDS`] unless shortened, e.g. by
    /// `JWT_INTERNAL_TTL_SECONDS` on the gateway).
    pub internal_ttl_seconds: i64,
}

impl TokenKeys {
    /// A service that only verifies (every service but the gateway): it accepts the internal
    /// audience only, never a user's own token.
    pub fn verifier(public_keys: Vec<VerifyingKey>, policy: TokenPolicy) -> Result<Self, KeyError> {
        if public_keys.is_empty() {
            return Err(KeyError::NoPublicKey);
        }
        Ok(Self {
            signing: None,
            verifying: Arc::new(public_keys),
            accepts: Audience::Internal,
            ttl_seconds: policy.ttl_seconds,
            internal_ttl_seconds: INTERNAL_TTL_SECONDS,
            policy: Arc::new(policy),
            revocations: Revocations::default(),
        })
    }

    /// The gateway: signs with `signing`, verifies with its public half plus `also_accepted`
    /// (the previous key during a rollover, or the next one before it signs). It accepts users'
    /// tokens only: an internal token is refused at the gateway.
    pub fn issuer(
        signing: SigningKey,
        also_accepted: Vec<VerifyingKey>,
        policy: TokenPolicy,
    ) -> Result<Self, KeyError> {
        let own = VerifyingKey::from_jwk(signing.public_jwk())?;
        let mut verifying = vec![own];
        for key in also_accepted {
            if verifying.iter().all(|known| known.kid != key.kid) {
                verifying.push(key);
            }
        }
        Ok(Self {
            signing: Some(Arc::new(signing)),
            verifying: Arc::new(verifying),
            accepts: Audience::User,
            ttl_seconds: policy.ttl_seconds,
            internal_ttl_seconds: INTERNAL_TTL_SECONDS,
            policy: Arc::new(policy),
            revocations: Revocations::default(),
        })
    }

    pub fn policy(&self) -> &TokenPolicy {
        &self.policy
    }

    /// The audience this process accepts.
    pub fn accepts(&self) -> Audience {
        self.accepts
    }

    /// The revocations this process checks (filled by the gateway; empty elsewhere).
    pub fn revocations(&self) -> &Revocations {
        &self.revocations
    }

    /// The public keys this service accepts, as `/.well-known/jwks.json` publishes them.
    pub fn jwks(&self) -> JwkSet {
        jwk_set(self.verifying.iter().map(|key| &key.jwk))
    }

    /// The `kid` new tokens are signed with (none on a verifier).
    pub fn signing_kid(&self) -> Option<&str> {
        self.signing.as_deref().map(SigningKey::kid)
    }

    /// A user's token (login), for the user audience.
    pub fn issue(&self, subject: &Subject<'_>) -> Result<String, KeyError> {
        let now = chrono::Utc::now().timestamp();
        self.sign(&Claims {
            sub: subject.id,
            email: subject.email.to_owned(),
            name: subject.name.to_owned(),
            role: subject.role,
            iss: self.policy.issuer.clone(),
            aud: self.policy.audience.clone(),
            iat: now,
            exp: now + self.ttl_seconds,
            sv: subject.session_version,
            guest_order: None,
        })
    }

    /// The token the gateway sends with a request it forwards for `caller` (whose token it
    /// verified, revocation included): the same subject, role and claims, for the internal
    /// audience, living [`Self::internal_ttl_seconds`].
    pub fn issue_internal(&self, caller: &Claims) -> Result<String, KeyError> {
        let now = chrono::Utc::now().timestamp();
        self.sign(&Claims {
            aud: self.policy.internal_audience(),
            iss: self.policy.issuer.clone(),
            iat: now,
            exp: now + self.internal_ttl_seconds,
            ..caller.clone()
        })
    }

    /// The internal token for a guest who presented `order`'s access token at the gateway: no
    /// account (`sub` nil, customer role), and `guest_order` naming the one order it opens.
    pub fn issue_guest_internal(&self, order: Uuid) -> Result<String, KeyError> {
        let now = chrono::Utc::now().timestamp();
        self.sign(&Claims {
            sub: Uuid::nil(),
            email: String::new(),
            name: "guest".to_owned(),
            role: Role::Customer,
            iss: self.policy.issuer.clone(),
            aud: self.policy.internal_audience(),
            iat: now,
            exp: now + self.internal_ttl_seconds,
            sv: 0,
            guest_order: Some(order),
        })
    }

    fn sign(&self, claims: &Claims) -> Result<String, KeyError> {
        let signing = self.signing.as_deref().ok_or(KeyError::CannotSign)?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(signing.kid.clone());
        jsonwebtoken::encode(&header, claims, &signing.encoding)
            .map_err(|error| KeyError::SigningKey(error.to_string()))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token)?;
        // Only EdDSA: a token claiming HS256 (with the public key as the "secret") or `none`
        // never reaches a key.
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.verifying.iter().find(|key| key.kid == kid))
            .ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.policy.issuer]);
        let audience = match self.accepts {
            Audience::User => self.policy.audience.clone(),
            Audience::Internal => self.policy.internal_audience(),
        };
        validation.set_audience(&[&audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)?.claims;
        if self.revocations.is_revoked(&claims) {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }
}

fn unauthorized(detail: &str) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Valid credentials are required")
        .with_detail(detail)
}

/// The caller's verified claims, when a valid bearer token came with the request. A missing
/// token is `None`; a present but invalid one (tampered, expired) is a 401, never silently
/// treated as anonymous.
pub fn caller(req: &HttpRequest) -> Result<Option<Claims>, Problem> {
    let Some(header) = req.headers().get(actix_web::http::header::AUTHORIZATION) else { return Ok(None) };
    let keys = req
        .app_data::<web::Data<TokenKeys>>()
        .ok_or_else(|| Problem::internal_message("TokenKeys missing from app data"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("use `Authorization: Bearer <token>`"))?;
    keys.verify(token.trim())
        .map(Some)
        .map_err(|error| unauthorized(&format!("the token is not valid: {error}")))
}

/// Any authenticated user.
pub struct Authenticated(pub Claims);

/// An authenticated admin; a customer gets 403.
pub struct Admin(pub Claims);

/// Authenticated or anonymous (guest checkout).
pub struct MaybeAuthenticated(pub Option<Claims>);

impl FromRequest for MaybeAuthenticated {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller(req).map(Self))
    }
}

impl FromRequest for Authenticated {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller(req).and_then(|claims| claims.map(Self).ok_or_else(|| unauthorized("no bearer token"))))
    }
}

impl FromRequest for Admin {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match caller(req) {
            Ok(Some(claims)) if claims.role == Role::Admin => Ok(Self(claims)),
            Ok(Some(_)) => Err(Problem::new(StatusCode::FORBIDDEN, "forbidden", "This needs the admin role")),
            Ok(None) => Err(unauthorized("no bearer token")),
            Err(problem) => Err(problem),
        })
    }
}

/// Middleware for a scope whose every route is admin-only (an internal service's admin API).
pub async fn admin_only(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let refusal = match caller(req.request()) {
        Ok(Some(claims)) if claims.role == Role::Admin => None,
        Ok(Some(_)) => Some(Problem::new(StatusCode::FORBIDDEN, "forbidden", "This needs the admin role")),
        Ok(None) => Some(unauthorized("no bearer token")),
        Err(problem) => Some(problem),
    };
    match refusal {
        Some(problem) => Ok(req.into_response(actix_web::ResponseError::error_response(&problem))),
        None => Ok(next.call(req).await?.map_into_boxed_body()),
    }
}

#[cfg(test)]
mod tests;

/// Where a service's keys come from (the `JWT_*` settings, see `messaging::runtime`).
pub struct KeySettings<'a> {
    pub service: &'a str,
    /// True for the gateway, the only service that signs.
    pub signs: bool,
    pub signing_key: Option<&'a crate::settings::Secret>,
    /// A JWK set (`{"keys":[...]}`); empty or unset means the local key pair in `key_dir`.
    pub public_keys: Option<&'a str>,
    pub key_dir: &'a str,
    pub policy: TokenPolicy,
}

impl TokenKeys {
    /// Validates and loads the keys named by the settings, with a one-line error naming the
    /// setting to change.
    pub fn from_settings(settings: KeySettings<'_>) -> Result<Self, KeyError> {
        let configured = settings.public_keys.filter(|json| !json.trim().is_empty());
        let public = configured.map(parse_public_keys).transpose()?;
        if !settings.signs {
            if settings.signing_key.is_some() {
                return Err(KeyError::NotTheIssuer { service: settings.service.to_owned() });
            }
            let public = match public {
                Some(public) => public,
                None => parse_public_keys(&local_keys(settings.key_dir)?.public_jwks)?,
            };
            return Self::verifier(public, settings.policy);
        }
        let signing = match (settings.signing_key, &public) {
            (Some(pem), _) => SigningKey::from_pem(pem)?,
            // Public keys configured but no private key: a production set-up missing its
            // secret; falling back to a local key would sign tokens nobody else accepts.
            (None, Some(_)) => {
                return Err(KeyError::SigningKey("unset while JWT_PUBLIC_KEYS is set; set both".into()));
            }
            (None, None) => SigningKey::from_pem(&local_keys(settings.key_dir)?.signing_pem)?,
        };
        Self::issuer(signing, public.unwrap_or_default(), settings.policy)
    }
}
