//! Ending sessions (logout, password change) and the public keys tokens are signed with.

use super::problems;
use crate::accounts::{self, sessions};
use actix_web::{HttpResponse, web};
use platform::auth::{Authenticated, TokenKeys};
use platform::db::PgPool;
use platform::problem::Problem;

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    description = "Revokes every token of the account, this one included (all devices). Refused everywhere within a minute, at once on the replica that answered.",
    responses((status = 204), (status = 401, body = crate::http::openapi::ProblemDoc)), security(("bearer" = [])))]
pub async fn logout(
    pool: web::Data<PgPool>,
    keys: web::Data<TokenKeys>,
    caller: Authenticated,
) -> Result<HttpResponse, Problem> {
    sessions::logout(&pool, &keys, &caller.0).await.map_err(problems::account)?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", request_body = sessions::PasswordChange,
    description = "Changes the password and revokes every older token; the answer is a fresh token for this client.",
    responses((status = 200, body = accounts::AccessToken), (status = 401, body = crate::http::openapi::ProblemDoc),
        (status = 422, body = crate::http::openapi::ProblemDoc)), security(("bearer" = [])))]
pub async fn change_password(
    pool: web::Data<PgPool>,
    keys: web::Data<TokenKeys>,
    caller: Authenticated,
    body: web::Json<sessions::PasswordChange>,
) -> Result<HttpResponse, Problem> {
    let token = sessions::change_password(&pool, &keys, &caller.0, body.into_inner())
        .await
        .map_err(problems::account)?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(token))
}

/// The public keys of the token signer (RFC 7517), one per `kid`: the signing key and, during
/// a rollover, the other key still accepted. Public by design; cacheable for a few minutes.
pub async fn jwks(keys: web::Data<TokenKeys>) -> HttpResponse {
    HttpResponse::Ok().insert_header(("Cache-Control", "public, max-age=300")).json(keys.jwks())
}
