//! The stream's reads of `order_status_history` (written by `crate::store`): raw SQL, since
//! they compare against the current snapshot, which diesel's DSL cannot express.

use super::{LiveEvent, Position, Scope};
use crate::orders::HistoryView;
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// Rows written by transactions older than every transaction still running: no row can become
/// visible before them any more (see the migration `live_order_updates`).
const SETTLED: &str = "h.tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint";

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    tx: i64,
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = SqlUuid)]
    order_id: Uuid,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    customer_id: Option<Uuid>,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Nullable<Text>)]
    reason: Option<String>,
    #[diesel(sql_type = Text)]
    caused_by: String,
    #[diesel(sql_type = Timestamptz)]
    at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct PositionRow {
    #[diesel(sql_type = BigInt)]
    tx: i64,
    #[diesel(sql_type = BigInt)]
    id: i64,
}

impl From<PositionRow> for Position {
    fn from(row: PositionRow) -> Self {
        Position { tx: row.tx, id: row.id }
    }
}

/// The settled rows after `after` that `scope` shows, oldest first, at most `limit`.
pub async fn settled_after(
    conn: &mut AsyncPgConnection,
    after: Position,
    scope: Scope,
    limit: i64,
) -> diesel::QueryResult<Vec<LiveEvent>> {
    let (order, customer) = match scope {
        Scope::Order(id) => (Some(id), None),
        Scope::Customer(id) => (None, Some(id)),
        Scope::All => (None, None),
    };
    let rows: Vec<Row> = diesel::sql_query(format!(
        "SELECT h.tx, h.id, h.order_id, o.customer_id, h.status, h.reason, h.caused_by, h.at \
         FROM order_status_history h JOIN orders o ON o.id = h.order_id \
         WHERE (h.tx, h.id) > ($1, $2) AND {SETTLED} \
           AND ($3::uuid IS NULL OR h.order_id = $3) AND ($4::uuid IS NULL OR o.customer_id = $4) \
         ORDER BY h.tx, h.id LIMIT $5"
    ))
    .bind::<BigInt, _>(after.tx)
    .bind::<BigInt, _>(after.id)
    .bind::<Nullable<SqlUuid>, _>(order)
    .bind::<Nullable<SqlUuid>, _>(customer)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| LiveEvent {
            position: Position { tx: row.tx, id: row.id },
            order_id: row.order_id,
            customer_id: row.customer_id,
            entry: HistoryView {
                status: row.status,
                at: row.at,
                reason: row.reason,
                caused_by: row.caused_by,
            },
        })
        .collect())
}

/// The last settled row: a stream without `Last-Event-ID` of all orders starts after it.
pub async fn head(conn: &mut AsyncPgConnection) -> diesel::QueryResult<Position> {
    let rows: Vec<PositionRow> = diesel::sql_query(format!(
        "SELECT h.tx, h.id FROM order_status_history h WHERE {SETTLED} ORDER BY h.tx DESC, h.id DESC LIMIT 1"
    ))
    .load(conn)
    .await?;
    Ok(rows.into_iter().next().map(Position::from).unwrap_or_default())
}

/// Where the history row `id` (a client's `Last-Event-ID`) stands; `None` if there is none.
pub async fn position_of(conn: &mut AsyncPgConnection, id: i64) -> diesel::QueryResult<Option<Position>> {
    let rows: Vec<PositionRow> =
        diesel::sql_query("SELECT h.tx, h.id FROM order_status_history h WHERE h.id = $1")
            .bind::<BigInt, _>(id)
            .load(conn)
            .await?;
    Ok(rows.into_iter().next().map(Position::from))
}
