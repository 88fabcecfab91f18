//! Writing events: always inside the caller's transaction, never straight to the broker, so a
//! state change and the events it causes commit or vanish together.

use crate::schema::outbox;
use contracts::{Envelope, Event};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

#[derive(Insertable)]
#[diesel(table_name = outbox)]
struct NewOutboxRow<'a> {
    event_id: uuid::Uuid,
    routing_key: &'a str,
    payload: Vec<u8>,
    traceparent: Option<&'a str>,
}

/// The outbox of one service: every event it enqueues carries the service as its `source`.
/// A service holds one, bound at compile time (`pub const OUTBOX: Outbox = Outbox::new(SERVICE)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outbox {
    source: &'static str,
}

impl Outbox {
    pub const fn new(source: &'static str) -> Self {
        Self { source }
    }

    /// Queues `event` for publishing once the surrounding transaction commits. The current
    /// span's `traceparent` goes with it (in the envelope and the row), so the consumers' spans
    /// continue this trace.
    pub async fn enqueue(&self, conn: &mut AsyncPgConnection, event: &Event) -> QueryResult<Envelope> {
        let mut envelope = Envelope::new(self.source, event);
        envelope.traceparent = platform::trace::current_traceparent();
        enqueue_envelope(conn, &envelope).await?;
        Ok(envelope)
    }
}

/// Queues a ready envelope; one without a `traceparent` takes the current span's.
pub async fn enqueue_envelope(conn: &mut AsyncPgConnection, envelope: &Envelope) -> QueryResult<()> {
    let traced;
    let envelope = match &envelope.traceparent {
        Some(_) => envelope,
        None => match platform::trace::current_traceparent() {
            Some(traceparent) => {
                traced = Envelope { traceparent: Some(traceparent), ..envelope.clone() };
                &traced
            }
            None => envelope,
        },
    };
    diesel::insert_into(outbox::table)
        .values(NewOutboxRow {
            event_id: envelope.id,
            routing_key: &envelope.event_type,
            payload: envelope.to_bytes(),
            traceparent: envelope.traceparent.as_deref(),
        })
        .execute(conn)
        .await?;
    Ok(())
}

/// Events not yet confirmed by the broker, and the age in seconds of the oldest one.
pub async fn backlog(conn: &mut AsyncPgConnection) -> QueryResult<(i64, f64)> {
    let count: i64 = outbox::table.count().get_result(conn).await?;
    let oldest: Option<chrono::DateTime<chrono::Utc>> =
        outbox::table.select(diesel::dsl::min(outbox::created_at)).get_result(conn).await?;
    let age = oldest.map(|t| (chrono::Utc::now() - t).num_milliseconds() as f64 / 1000.0).unwrap_or(0.0);
    Ok((count, age))
}
