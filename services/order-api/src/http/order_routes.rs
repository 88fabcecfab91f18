use super::problems;
use crate::domain::new_order::{CreateOrderRequest, Limits};
use crate::http::client::ClientAddress;
use crate::http::guards::ReplayBody;
use crate::orders::{self, Intake, Placer};
use crate::settings::Settings;
use crate::store::{ListOrder, OrderFilter};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use platform::auth::{Admin, Authenticated, MaybeAuthenticated, Role};
use platform::db::PgPool;
use platform::problem::{FieldError, Problem};
use serde::Deserialize;
use uuid::Uuid;

/// How orders are taken, from the settings.
pub struct OrderPolicy {
    pub intake: Intake,
    pub guest_checkout: bool,
}

pub fn policy(settings: &Settings) -> OrderPolicy {
    OrderPolicy {
        intake: Intake {
            limits: Limits {
                max_items: settings.max_items_per_order,
                max_quantity: settings.max_quantity_per_line,
            },
            max_open_orders: settings.max_open_orders_per_client,
            rates_max_age_days: settings.rates_max_age_days,
        },
        guest_checkout: settings.guest_checkout,
    }
}

/// A guest order's access token: `?access_token=` (what the invoice link uses) or the
/// `Order-Access-Token` header (which keeps it out of access logs).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// The guest order's access token (from `POST /orders` or the invoice link).
    access_token: Option<String>,
}

const ACCESS_TOKEN_HEADER: &str = "order-access-token";

pub(crate) fn access_token(req: &HttpRequest, query: TokenQuery) -> Option<String> {
    req.headers()
        .get(ACCESS_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(query.access_token)
}

#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id"), TokenQuery,
        ("Order-Access-Token" = Option<String>, Header, description = "A guest order's access token (instead of the query parameter)")),
    responses((status = 200, description = "Cancelled; stock released or restocked, payment voided or refunded", body = crate::orders::OrderView),
        (status = 404, description = "No such order, or not yours (the same answer for both)", body = crate::http::openapi::ProblemDoc),
        (status = 409, description = "Not cancellable in its state (`current_status` says which)", body = crate::http::openapi::ProblemDoc)),
    security((), ("bearer" = [])))]
pub async fn cancel(
    req: HttpRequest,
    pool: web::Data<PgPool>,
    id: web::Path<Uuid>,
    query: web::Query<TokenQuery>,
    caller: MaybeAuthenticated,
) -> Result<HttpResponse, Problem> {
    let token = access_token(&req, query.into_inner());
    let mut conn = connection(&pool).await?;
    let order = orders::cancel(&mut conn, id.into_inner(), caller.0.as_ref(), token.as_deref())
        .await
        .map_err(problems::order)?;
    Ok(HttpResponse::Ok().json(order))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    status: orders::ManualStatus,
}

#[utoipa::path(post, path = "/api/v1/orders/{id}/status", tag = "orders", request_body = StatusChange,
    params(("id" = Uuid, Path, description = "Order id")),
    responses((status = 200, body = crate::orders::OrderView), (status = 401, body = crate::http::openapi::ProblemDoc), (status = 403, body = crate::http::openapi::ProblemDoc),
        (status = 409, body = crate::http::openapi::ProblemDoc), (status = 422, body = crate::http::openapi::ProblemDoc)),
    security(("bearer" = [])))]
pub async fn set_status(
    _admin: Admin,
    pool: web::Data<PgPool>,
    id: web::Path<Uuid>,
    body: web::Json<StatusChange>,
) -> Result<HttpResponse, Problem> {
    let mut conn = connection(&pool).await?;
    let order =
        orders::set_manual_status(&mut conn, id.into_inner(), body.status).await.map_err(problems::order)?;
    Ok(HttpResponse::Ok().json(order))
}

async fn connection(pool: &PgPool) -> Result<platform::db::PooledConnection, Problem> {
    pool.get().await.map_err(|e| Problem::unavailable(e.to_string()))
}

#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", request_body = CreateOrderRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first answer for 24 h (a guest's without its `access_token`); reuse with another body is a 422")),
    responses((status = 201, description = "Accepted as `pending`; a guest order's answer carries its `access_token`, once", body = crate::orders::OrderView, headers(("Location" = String))),
        (status = 400, body = crate::http::openapi::ProblemDoc), (status = 401, description = "Guest checkout is off", body = crate::http::openapi::ProblemDoc),
        (status = 403, description = "The account has not verified its email (`email_not_verified`; only with `REQUIRE_VERIFIED_EMAIL=true`)", body = crate::http::openapi::ProblemDoc),
        (status = 409, description = "Same Idempotency-Key still in flight", body = crate::http::openapi::ProblemDoc), (status = 413, body = crate::http::openapi::ProblemDoc),
        (status = 422, description = "Invalid; for an account, `customer_email` other than the account's", body = crate::http::openapi::ProblemDoc),
        (status = 429, description = "Rate limited, or too many unpaid orders open (`too_many_open_orders`)", body = crate::http::openapi::ProblemDoc)),
    security((), ("bearer" = [])))]
pub async fn create(
    req: HttpRequest,
    pool: web::Data<PgPool>,
    policy: web::Data<OrderPolicy>,
    accounts: web::Data<crate::accounts::verification::AccountPolicy>,
    caller: MaybeAuthenticated,
    client: ClientAddress,
    body: web::Json<CreateOrderRequest>,
) -> Result<HttpResponse, Problem> {
    if caller.0.is_none() && !policy.guest_checkout {
        return Err(Problem::new(
            actix_web::http::StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Guest checkout is off: log in to order",
        ));
    }
    let placer = match caller.0.as_ref() {
        Some(claims) => Placer::Account(claims),
        None => Placer::Guest(client.0),
    };
    let mut conn = connection(&pool).await?;
    if let Placer::Account(claims) = placer {
        crate::accounts::verification::ensure_may_order(&mut conn, claims.sub, &accounts)
            .await
            .map_err(problems::account)?;
    }
    let claim = actix_web::HttpMessage::extensions(&req).get::<crate::store::IdempotencyClaim>().cloned();
    let mut order = orders::place(&mut conn, body.into_inner(), policy.intake, placer, claim.as_ref())
        .await
        .map_err(problems::order)?;
    let location = format!("/api/v1/orders/{}", order.id);
    let Some(token) = order.access_token.take() else {
        return Ok(HttpResponse::Created().insert_header(("Location", location)).json(order));
    };
    // The token is shown once: a replay of this answer (Idempotency-Key) goes without it.
    // Without a key nothing is stored, so the answer is encoded once, not twice.
    let without_token = match claim {
        Some(_) => Some(serde_json::to_vec(&order).map_err(|e| Problem::internal(&e))?),
        None => None,
    };
    order.access_token = Some(token);
    let mut response = HttpResponse::Created()
        .insert_header(("Location", location))
        .insert_header(("Cache-Control", "no-store"))
        .json(order);
    if let Some(without_token) = without_token {
        response.extensions_mut().insert(ReplayBody(without_token.into()));
    }
    Ok(response)
}

#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders",
    params(("id" = Uuid, Path, description = "Order id"), TokenQuery,
        ("Order-Access-Token" = Option<String>, Header, description = "A guest order's access token (instead of the query parameter)")),
    responses((status = 200, body = crate::orders::OrderView),
        (status = 404, description = "No such order, or not yours (the same answer for both, for every caller)", body = crate::http::openapi::ProblemDoc)),
    security((), ("bearer" = [])))]
pub async fn get(
    req: HttpRequest,
    pool: web::Data<PgPool>,
    id: web::Path<Uuid>,
    query: web::Query<TokenQuery>,
    caller: MaybeAuthenticated,
) -> Result<HttpResponse, Problem> {
    let token = access_token(&req, query.into_inner());
    let mut conn = connection(&pool).await?;
    let order = orders::find_with_token(&mut conn, id.into_inner(), caller.0.as_ref(), token.as_deref())
        .await
        .map_err(problems::order)?;
    Ok(HttpResponse::Ok().json(order))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Orders per page, 1 to 100 (default 20).
    limit: Option<i64>,
    /// The `next_cursor` of the previous page: the orders after that one, in `order`.
    starting_after: Option<Uuid>,
    /// Only orders in this status.
    status: Option<String>,
    /// Only orders created after this instant (RFC 3339).
    created_after: Option<DateTime<Utc>>,
    /// Only orders created before this instant (RFC 3339).
    created_before: Option<DateTime<Utc>>,
    /// Admins only; the address in any letter case.
    customer_email: Option<String>,
    /// `asc` (oldest first, the default) or `desc` (newest first).
    #[param(inline)]
    order: Option<ListOrder>,
}

#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", params(ListQuery),
    responses((status = 200, body = crate::orders::Page), (status = 401, body = crate::http::openapi::ProblemDoc), (status = 422, body = crate::http::openapi::ProblemDoc)),
    security(("bearer" = [])))]
pub async fn list(
    pool: web::Data<PgPool>,
    query: web::Query<ListQuery>,
    caller: Authenticated,
) -> Result<HttpResponse, Problem> {
    let query = query.into_inner();
    let is_admin = caller.0.role == Role::Admin;
    let limit = query.limit.unwrap_or(20);
    let mut errors = Vec::new();
    if !(1..=100).contains(&limit) {
        errors.push(FieldError::new("limit", "must be between 1 and 100"));
    }
    let status = query
        .status
        .as_deref()
        .map(orders::parse_status)
        .transpose()
        .map_err(|e| errors.push(e.into()))
        .ok()
        .flatten();
    if query.customer_email.is_some() && !is_admin {
        errors.push(FieldError::new("customer_email", "only admins filter by customer"));
    }
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    let filter = OrderFilter {
        owner: (!is_admin).then_some(caller.0.sub),
        // Lower-cased by the query, on both sides, as the index is built.
        customer_email: query.customer_email.map(|email| email.trim().to_owned()),
        status,
        starting_after: query.starting_after,
        created_after: query.created_after,
        created_before: query.created_before,
        order: query.order.unwrap_or_default(),
    };
    let mut conn = connection(&pool).await?;
    let page = orders::list(&mut conn, &filter, limit).await.map_err(problems::order)?;
    Ok(HttpResponse::Ok().json(page))
}
