use crate::accounts::{self, AccountError, Credentials, Registration, store};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use platform::auth::{Authenticated, Role, TokenKeys};
use platform::db::PgPool;
use platform::problem::{FieldError, Problem};

fn problem(error: AccountError) -> Problem {
    match error {
        AccountError::Invalid(errors) => Problem::validation(errors),
        AccountError::EmailTaken => {
            Problem::new(StatusCode::CONFLICT, "email_taken", "An account with this email exists")
                .with_errors(vec![FieldError::new("email", "is already registered")])
        }
        AccountError::InvalidCredentials => {
            Problem::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "Wrong email or password")
        }
        AccountError::Password(error) => Problem::internal(&error),
        AccountError::Db(error) => Problem::internal(&error),
    }
}

async fn connection(pool: &PgPool) -> Result<platform::db::PooledConnection, Problem> {
    pool.get().await.map_err(|e| Problem::unavailable(e.to_string()))
}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = Registration,
    responses((status = 201, body = accounts::Profile), (status = 409, body = crate::http::openapi::ProblemDoc), (status = 422, body = crate::http::openapi::ProblemDoc)))]
pub async fn register(
    pool: web::Data<PgPool>,
    body: web::Json<Registration>,
) -> Result<HttpResponse, Problem> {
    let mut conn = connection(&pool).await?;
    let profile = accounts::register(&mut conn, body.into_inner(), Role::Customer).await.map_err(problem)?;
    Ok(HttpResponse::Created().json(profile))
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = Credentials,
    responses((status = 200, body = accounts::AccessToken), (status = 401, body = crate::http::openapi::ProblemDoc)))]
pub async fn login(
    pool: web::Data<PgPool>,
    keys: web::Data<TokenKeys>,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, Problem> {
    let mut conn = connection(&pool).await?;
    let token = accounts::login(&mut conn, &keys, body.into_inner()).await.map_err(problem)?;
    Ok(HttpResponse::Ok().json(token))
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
