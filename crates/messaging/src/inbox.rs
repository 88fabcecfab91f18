//! The consumer's half of exactly-once effects: an event id is recorded in the same transaction
//! as the handler's effects.

use crate::schema::inbox;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// Records `event_id`; false when it was already handled (a redelivery or a replay). A concurrent
/// duplicate waits on the primary key until the first transaction ends, then sees the row.
pub async fn record(
    conn: &mut AsyncPgConnection,
    event_id: uuid::Uuid,
    event_type: &str,
) -> QueryResult<bool> {
    let inserted = diesel::insert_into(inbox::table)
        .values((inbox::event_id.eq(event_id), inbox::event_type.eq(event_type)))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(inserted == 1)
}

pub async fn contains(conn: &mut AsyncPgConnection, event_id: uuid::Uuid) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(inbox::table.find(event_id))).get_result(conn).await
}
