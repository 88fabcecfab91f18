use super::problems;
use crate::accounts::backoff::LoginPolicy;
use crate::accounts::{self, AccountError, Credentials, Registration, store};
use crate::http::client::ClientAddress;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use platform::auth::{Authenticated, Role, TokenKeys};
use platform::db::PgPool;
use platform::problem::Problem;

async fn connection(pool: &PgPool) -> Result<platform::db::PooledConnection, Problem> {
    pool.get().await.map_err(|e| Problem::unavailable(e.to_string()))
}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = Registration,
    description = "Answers 201 with a profile whether or not the email already had an account, so \
                   registration does not reveal who is registered; only the real owner can then log in.",
    responses((status = 201, body = accounts::Profile), (status = 422, body = crate::http::openapi::ProblemDoc)))]
pub async fn register(
    pool: web::Data<PgPool>,
    body: web::Json<Registration>,
) -> Result<HttpResponse, Problem> {
    // Hash first, with no connection held; then one short insert.
    let account = accounts::prepare(body.into_inner()).await.map_err(problems::account)?;
    let mut conn = connection(&pool).await?;
    let profile = match accounts::create(&mut conn, &account, Role::Customer).await {
        Ok(profile) => profile,
        Err(AccountError::EmailTaken) => account.look_alike_profile(),
        Err(error) => return Err(problems::account(error)),
    };
    Ok(HttpResponse::Created().json(profile))
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = Credentials,
    responses((status = 200, body = accounts::AccessToken), (status = 401, body = crate::http::openapi::ProblemDoc),
        (status = 429, description = "Login backoff: too many failed logins for the account or from the address (`Retry-After`)", body = crate::http::openapi::ProblemDoc)))]
pub async fn login(
    pool: web::Data<PgPool>,
    keys: web::Data<TokenKeys>,
    policy: web::Data<LoginPolicy>,
    client: ClientAddress,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, Problem> {
    match accounts::login(&pool, &keys, body.into_inner(), client.0, **policy).await {
        Ok(token) => Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(token)),
        Err(AccountError::Backoff { retry_after_seconds }) => {
            let mut response =
                actix_web::ResponseError::error_response(&problems::account(AccountError::Backoff {
                    retry_after_seconds,
                }));
            response.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from(retry_after_seconds),
            );
            Ok(response)
        }
        Err(error) => Err(problems::account(error)),
    }
}

#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = accounts::Profile), (status = 401, body = crate::http::openapi::ProblemDoc)), security(("bearer" = [])))]
pub async fn me(pool: web::Data<PgPool>, caller: Authenticated) -> Result<HttpResponse, Problem> {
    let mut conn = connection(&pool).await?;
    match store::find(&mut conn, caller.0.sub).await.map_err(|e| Problem::internal(&e))? {
        Some(user) => Ok(HttpResponse::Ok().json(accounts::Profile::from(user))),
        // A valid token for a deleted account.
        None => Err(Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "This account no longer exists")),
    }
}
