//! Bearer tokens: the gateway issues HS256 JWTs at login; every service verifies them with the
//! same key, so an internal route is reachable only with valid credentials even when called
//! around the gateway.

use crate::problem::Problem;
use crate::settings::Secret;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::future::{Ready, ready};
use uuid::Uuid;

pub const ISSUER: &str = "orders";

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
    pub iat: i64,
    pub exp: i64,
}

/// The signing key, shared by every service.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    pub ttl_seconds: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("JWT_SECRET must be at least 32 bytes")]
    TooShort,
    #[error("cannot read or create the JWT secret file {path}: {source}")]
    File { path: String, source: std::io::Error },
}

impl TokenKeys {
    pub fn new(secret: &Secret, ttl_seconds: i64) -> Result<Self, KeyError> {
        let bytes = secret.expose().as_bytes();
        if bytes.len() < 32 {
            return Err(KeyError::TooShort);
        }
        Ok(Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            ttl_seconds,
        })
    }

    /// `JWT_SECRET` when set; otherwise the secret in `file`, created (random, mode 0600) by
    /// whichever local service starts first, so `make run` needs no configuration and no secret
    /// is ever committed.
    pub fn from_settings(secret: Option<&Secret>, file: &str, ttl_seconds: i64) -> Result<Self, KeyError> {
        match secret {
            Some(secret) => Self::new(secret, ttl_seconds),
            None => Self::new(&local_secret(file)?, ttl_seconds),
        }
    }

    pub fn issue(&self, sub: Uuid, email: &str, name: &str, role: Role) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub,
            email: email.to_owned(),
            name: name.to_owned(),
            role,
            iss: ISSUER.to_owned(),
            iat: now,
            exp: now + self.ttl_seconds,
        };
        // HS256 over a struct of strings and numbers cannot fail.
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).unwrap_or_default()
    }

    pub fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.leeway = 5;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map(|data| data.claims)
    }
}

fn local_secret(path: &str) -> Result<Secret, KeyError> {
    let error = |source| KeyError::File { path: path.to_owned(), source };
    if let Ok(existing) = std::fs::read_to_string(path) {
        return Ok(Secret::new(existing.trim().to_owned()));
    }
    if let Some(parent) = std::path::Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(error)?;
    }
    let fresh = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            std::io::Write::write_all(&mut file, fresh.as_bytes()).map_err(error)?;
            Ok(Secret::new(fresh))
        }
        // Another service created it between our read and our create.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read_to_string(path).map(|s| Secret::new(s.trim().to_owned())).map_err(error)
        }
        Err(e) => Err(error(e)),
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
        .ok_or_else(|| Problem::internal(&"TokenKeys missing from app data"))?;
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
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(&Secret::new("0123456789abcdef0123456789abcdef"), 60).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn issued_tokens_verify_and_carry_the_role() {
        let keys = keys();
        let token = keys.issue(Uuid::nil(), "a@b.co", "A", Role::Admin);
        let claims = keys.verify(&token).map_err(|e| e.to_string());
        assert_eq!(claims.map(|c| (c.role, c.email)), Ok((Role::Admin, "a@b.co".to_owned())));
    }

    #[test]
    fn tampered_expired_and_foreign_tokens_are_refused() {
        let keys = keys();
        let token = keys.issue(Uuid::nil(), "a@b.co", "A", Role::Customer);
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = parts[1].replace('A', "B");
        assert!(keys.verify(&parts.join(".")).is_err(), "tampered payload");
        let expired = TokenKeys { ttl_seconds: -3600, ..keys.clone() }.issue(
            Uuid::nil(),
            "a@b.co",
            "A",
            Role::Customer,
        );
        assert!(keys.verify(&expired).is_err(), "expired");
        let other = TokenKeys::new(&Secret::new("another-secret-another-secret-xx"), 60)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            keys.verify(&other.issue(Uuid::nil(), "a@b.co", "A", Role::Admin)).is_err(),
            "signed elsewhere"
        );
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(TokenKeys::new(&Secret::new("short"), 60).is_err());
    }
}
