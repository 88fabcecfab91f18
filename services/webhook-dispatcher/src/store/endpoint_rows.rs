//! `endpoints`: where integrators want events, with the secrets that sign them.

use super::{DisabledReason, endpoints, millis};
use crate::domain::{EndpointChanges, NewEndpoint};
use crate::secrets::{Keyring, SealError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::collections::BTreeMap;
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = endpoints)]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub secret: String,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub headers: serde_json::Value,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    pub disabled_reason: Option<DisabledReason>,
}

fn headers_json(headers: &BTreeMap<String, String>) -> serde_json::Value {
    serde_json::Value::Object(headers.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect())
}

/// `sealed_secret` is the signing secret sealed for `id` ([`Keyring::seal`]): no plaintext
/// secret is ever written.
pub async fn insert_endpoint(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    endpoint: &NewEndpoint,
    sealed_secret: &str,
) -> QueryResult<Endpoint> {
    diesel::insert_into(endpoints::table)
        .values((
            endpoints::id.eq(id),
            endpoints::url.eq(&endpoint.url),
            endpoints::description.eq(&endpoint.description),
            endpoints::event_types.eq(&endpoint.event_types),
            endpoints::secret.eq(sealed_secret),
            endpoints::headers.eq(headers_json(&endpoint.headers)),
            endpoints::enabled.eq(endpoint.enabled),
        ))
        .returning(Endpoint::as_returning())
        .get_result(conn)
        .await
}

pub async fn find_endpoint(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Endpoint>> {
    endpoints::table.find(id).select(Endpoint::as_select()).first(conn).await.optional()
}

/// Endpoints in id order (UUIDv7, so creation order) after `after`.
pub async fn list_endpoints(
    conn: &mut AsyncPgConnection,
    after: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<Endpoint>> {
    let mut query =
        endpoints::table.select(Endpoint::as_select()).order(endpoints::id).limit(limit).into_boxed();
    if let Some(after) = after {
        query = query.filter(endpoints::id.gt(after));
    }
    query.load(conn).await
}

#[derive(AsChangeset)]
#[diesel(table_name = endpoints)]
struct Changeset {
    url: Option<String>,
    event_types: Option<Vec<String>>,
    description: Option<Option<String>>,
    headers: Option<serde_json::Value>,
    enabled: Option<bool>,
    failing_since: Option<Option<DateTime<Utc>>>,
    disabled_reason: Option<Option<DisabledReason>>,
}

/// Applies a PATCH; switching an endpoint on (again) forgets its failure record.
pub async fn update_endpoint(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: EndpointChanges,
) -> QueryResult<Option<Endpoint>> {
    let reset = changes.enabled.is_some().then_some(None);
    let changeset = Changeset {
        url: changes.url,
        event_types: changes.event_types,
        description: changes.description,
        headers: changes.headers.as_ref().map(headers_json),
        enabled: changes.enabled,
        failing_since: changes.enabled.filter(|on| *on).map(|_| None),
        disabled_reason: reset,
    };
    diesel::update(endpoints::table.find(id))
        .set((changeset, endpoints::updated_at.eq(diesel::dsl::now)))
        .returning(Endpoint::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Deletes the endpoint with its deliveries and attempts; false when there was none.
pub async fn delete_endpoint(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
    Ok(diesel::delete(endpoints::table.find(id)).execute(conn).await? == 1)
}

/// Makes `sealed_secret` the signing secret; the one it replaces keeps signing for `overlap`.
pub async fn rotate_secret(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    sealed_secret: &str,
    overlap: Duration,
) -> QueryResult<Option<Endpoint>> {
    let expires = diesel::dsl::sql::<Timestamptz>("now() + ")
        .bind::<BigInt, _>(millis(overlap))
        .sql(" * interval '1 millisecond'");
    diesel::update(endpoints::table.find(id))
        .set((
            endpoints::previous_secret.eq(endpoints::secret.nullable()),
            endpoints::previous_secret_expires_at.eq(expires.nullable()),
            endpoints::secret.eq(sealed_secret),
            endpoints::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Endpoint::as_returning())
        .get_result(conn)
        .await
        .optional()
}

/// Any answer in 2xx ends a run of failures.
pub async fn endpoint_succeeded(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<()> {
    diesel::update(endpoints::table.find(id).filter(endpoints::failing_since.is_not_null()))
        .set(endpoints::failing_since.eq(None::<DateTime<Utc>>))
        .execute(conn)
        .await?;
    Ok(())
}

/// Records a failed attempt against the endpoint; disables it, returning its URL, when it has
/// now been failing for `disable_after` or more.
pub async fn endpoint_failed(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    disable_after: Duration,
) -> QueryResult<Option<String>> {
    diesel::update(endpoints::table.find(id).filter(endpoints::failing_since.is_null()))
        .set(endpoints::failing_since.eq(diesel::dsl::sql::<Nullable<Timestamptz>>("now()")))
        .execute(conn)
        .await?;
    let cutoff = diesel::dsl::sql::<Nullable<Timestamptz>>("now() - ")
        .bind::<BigInt, _>(millis(disable_after))
        .sql(" * interval '1 millisecond'");
    diesel::update(
        endpoints::table.find(id).filter(endpoints::enabled).filter(endpoints::failing_since.le(cutoff)),
    )
    .set((
        endpoints::enabled.eq(false),
        endpoints::disabled_reason.eq(DisabledReason::Failing),
        endpoints::updated_at.eq(diesel::dsl::now),
    ))
    .returning(endpoints::url)
    .get_result(conn)
    .await
    .optional()
}

/// Switches the endpoint off; its URL when it was on (so the caller announces it once).
pub async fn disable_endpoint(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    reason: DisabledReason,
) -> QueryResult<Option<String>> {
    diesel::update(endpoints::table.find(id).filter(endpoints::enabled))
        .set((
            endpoints::enabled.eq(false),
            endpoints::disabled_reason.eq(reason),
            endpoints::updated_at.eq(diesel::dsl::now),
        ))
        .returning(endpoints::url)
        .get_result(conn)
        .await
        .optional()
}

#[derive(Debug, thiserror::Error)]
pub enum ResealError {
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error("the signing secret of webhook endpoint {endpoint} {source}")]
    Seal { endpoint: Uuid, source: SealError },
}

/// Seals under the current key every endpoint secret that is not yet: plaintext from before
/// sealing existed, or sealed under a key since rotated out. One transaction, rows locked, so
/// replicas starting together do the work once. Returns how many endpoints changed; fails,
/// changing nothing, on a secret no configured key opens.
pub async fn reseal_secrets(conn: &mut AsyncPgConnection, keyring: &Keyring) -> Result<usize, ResealError> {
    let current = keyring.current_pattern();
    conn.transaction(async |conn: &mut AsyncPgConnection| {
        let stale: Vec<(Uuid, String, Option<String>)> = endpoints::table
            .filter(endpoints::secret.not_like(&current).or(endpoints::previous_secret.not_like(&current)))
            .select((endpoints::id, endpoints::secret, endpoints::previous_secret))
            .order(endpoints::id)
            .for_update()
            .load(conn)
            .await?;
        for (id, secret, previous) in &stale {
            let reseal = |stored: &str| -> Result<String, ResealError> {
                if keyring.is_current(stored) {
                    return Ok(stored.to_owned());
                }
                let opened = keyring
                    .open(*id, stored)
                    .map_err(|source| ResealError::Seal { endpoint: *id, source })?;
                Ok(keyring.seal(*id, &opened))
            };
            let secret = reseal(secret)?;
            let previous = previous.as_deref().map(reseal).transpose()?;
            diesel::update(endpoints::table.find(id))
                .set((endpoints::secret.eq(secret), endpoints::previous_secret.eq(previous)))
                .execute(conn)
                .await?;
        }
        Ok(stale.len())
    })
    .await
}
