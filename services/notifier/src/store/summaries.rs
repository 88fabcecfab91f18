//! The daily summary's bookkeeping: one row per (day, recipient) with its final or retrying
//! state, committed on its own as soon as the send is known, and one `summaries` row per day
//! once every recipient is final.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{Date, Integer, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

contracts::text_enum! {
    /// Where one recipient of one day's summary stands, as stored in `summary_deliveries.status`.
    pub enum RecipientStatus {
        Sent,
        /// The mail server refused the address for good (a 5xx): not tried again.
        Rejected,
        /// The mail server said "try later"; tried again at the next check.
        Retrying,
        /// "Try later" until the job's limit: given up for this day.
        Failed,
    }
}

impl RecipientStatus {
    /// Nothing more will be tried for this recipient and day.
    pub fn is_final(self) -> bool {
        match self {
            Self::Sent | Self::Rejected | Self::Failed => true,
            Self::Retrying => false,
        }
    }
}

#[derive(QueryableByName)]
struct DeliveryRow {
    #[diesel(sql_type = Text)]
    recipient: String,
    #[diesel(sql_type = Text)]
    status: RecipientStatus,
    #[diesel(sql_type = Integer)]
    attempts: i32,
}

/// One recipient's state for a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientState {
    pub recipient: String,
    pub status: RecipientStatus,
    pub attempts: i32,
}

pub async fn recipients(conn: &mut AsyncPgConnection, day: NaiveDate) -> QueryResult<Vec<RecipientState>> {
    let rows: Vec<DeliveryRow> = diesel::sql_query(
        "SELECT recipient, status, attempts FROM summary_deliveries WHERE day = $1 ORDER BY recipient",
    )
    .bind::<Date, _>(day)
    .load(conn)
    .await?;
    // The column's CHECK allows only the four values; anything else fails the read.
    Ok(rows
        .into_iter()
        .map(|row| RecipientState { status: row.status, recipient: row.recipient, attempts: row.attempts })
        .collect())
}

/// Records where one recipient stands after an attempt (insert or overwrite).
pub async fn record(
    conn: &mut AsyncPgConnection,
    day: NaiveDate,
    recipient: &str,
    status: RecipientStatus,
    attempts: i32,
    error: Option<&str>,
) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO summary_deliveries (day, recipient, status, attempts, last_error) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (day, recipient) DO UPDATE SET status = EXCLUDED.status, \
           attempts = EXCLUDED.attempts, last_error = EXCLUDED.last_error, updated_at = now()",
    )
    .bind::<Date, _>(day)
    .bind::<Text, _>(recipient)
    .bind::<Text, _>(status)
    .bind::<Integer, _>(attempts)
    .bind::<Nullable<Text>, _>(error)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(QueryableByName)]
struct DayRow {
    #[diesel(sql_type = Date)]
    day: NaiveDate,
}

/// Marks a day done (every recipient final); false when it already was.
pub async fn complete(conn: &mut AsyncPgConnection, day: NaiveDate, recipients: &str) -> QueryResult<bool> {
    let inserted = diesel::sql_query(
        "INSERT INTO summaries (day, recipients) VALUES ($1, $2) ON CONFLICT (day) DO NOTHING",
    )
    .bind::<Date, _>(day)
    .bind::<Text, _>(recipients)
    .execute(conn)
    .await?;
    Ok(inserted == 1)
}

pub async fn is_complete(conn: &mut AsyncPgConnection, day: NaiveDate) -> QueryResult<bool> {
    let row: Option<DayRow> = diesel::sql_query("SELECT day FROM summaries WHERE day = $1")
        .bind::<Date, _>(day)
        .get_result(conn)
        .await
        .optional()?;
    Ok(row.is_some())
}

/// The first day ever summarised or started (days before it are never caught up), and the days in
/// [`from`, `to`] already done.
pub async fn history(
    conn: &mut AsyncPgConnection,
    from: NaiveDate,
    to: NaiveDate,
) -> QueryResult<(Option<NaiveDate>, Vec<NaiveDate>)> {
    // A day whose summary was started counts too, finished or not.
    let first: Option<DayRow> = diesel::sql_query(
        "SELECT min(day) AS day FROM (SELECT day FROM summaries UNION ALL SELECT day FROM summary_deliveries) d \
         HAVING count(*) > 0",
    )
    .get_result(conn)
    .await
    .optional()?;
    let done: Vec<DayRow> =
        diesel::sql_query("SELECT day FROM summaries WHERE day >= $1 AND day <= $2 ORDER BY day")
            .bind::<Date, _>(from)
            .bind::<Date, _>(to)
            .load(conn)
            .await?;
    Ok((first.map(|row| row.day), done.into_iter().map(|row| row.day).collect()))
}
