use super::problems;
use crate::accounts::backoff::LoginPolicy;
use crate::accounts::verification::{self, AccountPolicy, ResetConfirmation, ResetRequest, Verification};
use crate::accounts::{self, AccountError, Credentials, Registration, store};
use crate::http::client::ClientAddress;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use platform::auth::{Authenticated, TokenKeys};
use platform::db::PgPool;
use platform::problem::Problem;

async fn connection(pool: &PgPool) -> Result<platform::db::PooledConnection, Problem> {
    pool.get().await.map_err(|e| Problem::unavailable(e.to_string()))
}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = Registration,
    description = "Answers 201 with a profile whether or not the email already had an account, so \
                   registration does not reveal who is registered; only the real owner can then log in. \
                   A new account is sent one verification email (`POST /auth/verify`).",
    responses((status = 201, body = accounts::Profile), (status = 422, body = crate::http::openapi::ProblemDoc)))]
pub async fn register(
    pool: web::Data<PgPool>,
    policy: web::Data<AccountPolicy>,
    body: web::Json<Registration>,
) -> Result<HttpResponse, Problem> {
    // Hash first, with no connection held; then one short transaction.
    let account = accounts::prepare(body.into_inner()).await.map_err(problems::account)?;
    let mut conn = connection(&pool).await?;
    let profile = match verification::register_customer(&mut conn, &account, &policy).await {
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
        Err(AccountError::Backoff { retry_after_seconds }) => Ok(retry_after(
            problems::account(AccountError::Backoff { retry_after_seconds }),
            retry_after_seconds,
        )),
        Err(error) => Err(problems::account(error)),
    }
}

fn retry_after(problem: Problem, seconds: u64) -> HttpResponse {
    let mut response = actix_web::ResponseError::error_response(&problem);
    response
        .headers_mut()
        .insert(actix_web::http::header::RETRY_AFTER, actix_web::http::header::HeaderValue::from(seconds));
    response
}

#[utoipa::path(post, path = "/api/v1/auth/verify", tag = "auth", request_body = Verification,
    description = "Verifies the account's email with the token from the link in its verification email. \
                   Each token works once, until it expires (`EMAIL_VERIFICATION_TTL_SECONDS`).",
    responses((status = 204, description = "Verified"),
        (status = 400, description = "Unknown, used or expired token (`invalid_token`)", body = crate::http::openapi::ProblemDoc)))]
pub async fn verify(pool: web::Data<PgPool>, body: web::Json<Verification>) -> Result<HttpResponse, Problem> {
    let mut conn = connection(&pool).await?;
    verification::verify(&mut conn, &body.token).await.map_err(problems::account)?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "auth", request_body = ResetRequest,
    description = "Emails a single-use reset link (valid `PASSWORD_RESET_TTL_SECONDS`) when the address has an \
                   account. The answer is 202 either way, so it does not reveal who is registered; requests are \
                   limited per address asked for and per client like logins.",
    responses((status = 202, description = "Accepted (whether or not the address has an account)"),
        (status = 429, description = "Too many reset requests for the address or from the client (`Retry-After`)", body = crate::http::openapi::ProblemDoc)))]
pub async fn request_reset(
    pool: web::Data<PgPool>,
    limits: web::Data<LoginPolicy>,
    policy: web::Data<AccountPolicy>,
    client: ClientAddress,
    body: web::Json<ResetRequest>,
) -> Result<HttpResponse, Problem> {
    match verification::request_reset(&pool, body.into_inner(), client.0, **limits, &policy).await {
        Ok(()) => Ok(HttpResponse::Accepted().finish()),
        Err(AccountError::Backoff { retry_after_seconds }) => {
            let problem = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "reset_backoff",
                "Too many password-reset requests for this address or from this client",
            )
            .with_detail(format!("retry in {retry_after_seconds} s"))
            .with_extension("retry_after_seconds", retry_after_seconds);
            Ok(retry_after(problem, retry_after_seconds))
        }
        Err(error) => Err(problems::account(error)),
    }
}

#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", tag = "auth", request_body = ResetConfirmation,
    description = "Sets a new password with the token from a reset email, and ends every session of the account \
                   (tokens issued before are refused). The token works once, until it expires.",
    responses((status = 204, description = "Password set; log in with it"),
        (status = 400, description = "Unknown, used or expired token (`invalid_token`)", body = crate::http::openapi::ProblemDoc),
        (status = 422, description = "The new password breaks the policy", body = crate::http::openapi::ProblemDoc)))]
pub async fn confirm_reset(
    pool: web::Data<PgPool>,
    keys: web::Data<TokenKeys>,
    body: web::Json<ResetConfirmation>,
) -> Result<HttpResponse, Problem> {
    verification::confirm_reset(&pool, &keys, body.into_inner()).await.map_err(problems::account)?;
    Ok(HttpResponse::NoContent().finish())
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
