//! `/webhook-endpoints`: create, list, get, update, delete, rotate the secret.

use super::{AppState, connection, db_problem, next_cursor, page_limit};
use crate::domain::{
    CreateEndpointRequest, EndpointChanges, NewEndpoint, SECRET_OVERLAP, UpdateEndpointRequest,
};
use crate::store::{self, Endpoint};
use crate::{redact, signing};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use platform::problem::{FieldError, Problem};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Serialize)]
pub struct EndpointView {
    pub id: Uuid,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub headers: serde_json::Value,
    /// Shown once, in the answer to the creation or a rotation; never listed (and stored only
    /// sealed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Until when the secret before the last rotation still signs deliveries.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub enabled: bool,
    /// `gone` or `failing` when we switched it off; null when its owner did (or it is on).
    pub disabled_reason: Option<contracts::events::DisabledReason>,
    /// Since when every attempt has failed; null after any success.
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl EndpointView {
    /// `secret` is the plaintext secret, passed only in the answer that issued it; the row holds
    /// it sealed. The URL is shown without its credentials.
    fn new(endpoint: Endpoint, secret: Option<String>) -> Self {
        Self {
            id: endpoint.id,
            url: redact::url(&endpoint.url),
            event_types: endpoint.event_types,
            description: endpoint.description,
            headers: endpoint.headers,
            secret,
            previous_secret_expires_at: endpoint.previous_secret_expires_at,
            enabled: endpoint.enabled,
            disabled_reason: endpoint.disabled_reason,
            failing_since: endpoint.failing_since,
            created_at: endpoint.created_at,
            updated_at: endpoint.updated_at,
        }
    }
}

/// The guard's verdict on a URL, as a field error an integrator can act on.
async fn check_target(state: &AppState, url: &str) -> Result<(), Problem> {
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        Problem::validation(vec![FieldError::new("url", format!("is not an absolute URL: {e}"))])
    })?;
    match state.guard.resolve(&parsed).await {
        Ok(_) => Ok(()),
        Err(error) => Err(Problem::validation(vec![FieldError::new("url", error.to_string())])),
    }
}

pub async fn create(
    state: web::Data<AppState>,
    body: web::Json<CreateEndpointRequest>,
) -> Result<HttpResponse, Problem> {
    let endpoint = NewEndpoint::try_from(body.into_inner()).map_err(Problem::validation)?;
    check_target(&state, &endpoint.url).await?;
    let (id, secret) = (Uuid::now_v7(), signing::generate_secret());
    let sealed = state.keyring.seal(id, &secret);
    let mut conn = connection(&state).await?;
    let created = store::insert_endpoint(&mut conn, id, &endpoint, &sealed).await.map_err(db_problem)?;
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/webhook-endpoints/{}", created.id)))
        .json(EndpointView::new(created, Some(secret))))
}

pub async fn get(state: web::Data<AppState>, id: web::Path<Uuid>) -> Result<HttpResponse, Problem> {
    let mut conn = connection(&state).await?;
    match store::find_endpoint(&mut conn, id.into_inner()).await.map_err(db_problem)? {
        Some(endpoint) => Ok(HttpResponse::Ok().json(EndpointView::new(endpoint, None))),
        None => Err(Problem::not_found("Webhook endpoint")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<i64>,
    starting_after: Option<Uuid>,
}

pub async fn list(state: web::Data<AppState>, query: web::Query<ListQuery>) -> Result<HttpResponse, Problem> {
    let limit = page_limit(query.limit)?;
    let mut conn = connection(&state).await?;
    let endpoints =
        store::list_endpoints(&mut conn, query.starting_after, limit).await.map_err(db_problem)?;
    let next_cursor = next_cursor(&endpoints, limit, |e| e.id);
    let items: Vec<EndpointView> = endpoints.into_iter().map(|e| EndpointView::new(e, None)).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "items": items, "next_cursor": next_cursor })))
}

pub async fn update(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: web::Json<UpdateEndpointRequest>,
) -> Result<HttpResponse, Problem> {
    let changes = EndpointChanges::try_from(body.into_inner()).map_err(Problem::validation)?;
    if let Some(url) = &changes.url {
        check_target(&state, url).await?;
    }
    let mut conn = connection(&state).await?;
    let enabled = changes.enabled == Some(true);
    match store::update_endpoint(&mut conn, id.into_inner(), changes).await.map_err(db_problem)? {
        Some(endpoint) => {
            if enabled {
                // Deliveries held back while it was off are due now.
                state.wake.notify_one();
            }
            Ok(HttpResponse::Ok().json(EndpointView::new(endpoint, None)))
        }
        None => Err(Problem::not_found("Webhook endpoint")),
    }
}

pub async fn delete(state: web::Data<AppState>, id: web::Path<Uuid>) -> Result<HttpResponse, Problem> {
    let mut conn = connection(&state).await?;
    if store::delete_endpoint(&mut conn, id.into_inner()).await.map_err(db_problem)? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(Problem::not_found("Webhook endpoint"))
    }
}

/// A new secret, shown once; the old one keeps signing (next to it) for [`SECRET_OVERLAP`].
pub async fn rotate_secret(state: web::Data<AppState>, id: web::Path<Uuid>) -> Result<HttpResponse, Problem> {
    let (id, secret) = (id.into_inner(), signing::generate_secret());
    let sealed = state.keyring.seal(id, &secret);
    let mut conn = connection(&state).await?;
    match store::rotate_secret(&mut conn, id, &sealed, SECRET_OVERLAP).await.map_err(db_problem)? {
        Some(endpoint) => Ok(HttpResponse::Ok().json(EndpointView::new(endpoint, Some(secret)))),
        None => Err(Problem::not_found("Webhook endpoint")),
    }
}
