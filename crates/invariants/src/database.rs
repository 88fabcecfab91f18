//! What the services' tables say: every order with its stock, money and invoices, products whose
//! reserved count disagrees with their reservations, and outboxes that still hold events.

use crate::Error;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

/// One order as every service sees it. Amounts are in cents (`NUMERIC(14, 2)` × 100).
#[derive(Debug, Clone, QueryableByName)]
pub struct OrderRow {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    /// Reached `confirmed` at some point (a cancelled order may have been confirmed first).
    #[diesel(sql_type = Bool)]
    pub ever_confirmed: bool,
    #[diesel(sql_type = BigInt)]
    pub total_cents: i64,
    #[diesel(sql_type = Text)]
    pub currency: String,
    #[diesel(sql_type = BigInt)]
    pub ordered: i64,
    #[diesel(sql_type = BigInt)]
    pub reserved: i64,
    #[diesel(sql_type = BigInt)]
    pub committed: i64,
    #[diesel(sql_type = BigInt)]
    pub released: i64,
    #[diesel(sql_type = BigInt)]
    pub returned: i64,
    #[diesel(sql_type = Nullable<Text>)]
    pub payment_status: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub captured_cents: i64,
    #[diesel(sql_type = BigInt)]
    pub refunded_cents: i64,
    /// The refunds recorded one by one (`payment.refunds`), against `refunded_cents`.
    #[diesel(sql_type = BigInt)]
    pub refund_rows_cents: i64,
    #[diesel(sql_type = BigInt)]
    pub invoices: i64,
}

#[derive(Debug, Clone, QueryableByName)]
pub struct ProductRow {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Text)]
    pub sku: String,
    #[diesel(sql_type = BigInt)]
    pub reserved: i64,
    #[diesel(sql_type = BigInt)]
    pub open_reservations: i64,
}

pub struct DatabaseState {
    pub orders: Vec<OrderRow>,
    /// Products whose `reserved` differs from the sum of their open reservations.
    pub products: Vec<ProductRow>,
    /// `(schema, events waiting)` for every outbox.
    pub outboxes: Vec<(String, i64)>,
}

/// Captured: a payment that took the money (a later refund does not undo the capture).
const ORDERS: &str = "
SELECT o.id::text AS id,
       o.status,
       (o.status IN ('confirmed', 'shipped', 'delivered') OR EXISTS (
           SELECT 1 FROM order_api.order_status_history h
           WHERE h.order_id = o.id AND h.status = 'confirmed')) AS ever_confirmed,
       (o.total_amount * 100)::bigint AS total_cents,
       o.currency,
       COALESCE((SELECT sum(i.quantity) FROM order_api.order_items i WHERE i.order_id = o.id), 0)::bigint
           AS ordered,
       COALESCE(r.reserved, 0)::bigint AS reserved,
       COALESCE(r.committed, 0)::bigint AS committed,
       COALESCE(r.released, 0)::bigint AS released,
       COALESCE(r.returned, 0)::bigint AS returned,
       p.status AS payment_status,
       COALESCE(CASE WHEN p.status IN ('succeeded', 'refunded', 'partially_refunded')
                     THEN p.amount * 100 END, 0)::bigint AS captured_cents,
       COALESCE(p.refunded_amount * 100, 0)::bigint AS refunded_cents,
       COALESCE((SELECT sum(f.amount) * 100 FROM {refunds} f WHERE f.payment_id = p.id), 0)::bigint
           AS refund_rows_cents,
       (SELECT count(*) FROM {notifications} n
        WHERE n.order_id = o.id AND n.kind = 'invoice' AND n.channel = 'email')::bigint AS invoices
FROM order_api.orders o
LEFT JOIN (
    SELECT order_id,
           sum(quantity) FILTER (WHERE status = 'reserved') AS reserved,
           sum(quantity) FILTER (WHERE status = 'committed') AS committed,
           sum(quantity) FILTER (WHERE status = 'released') AS released,
           sum(quantity) FILTER (WHERE status = 'returned') AS returned
    FROM {reservations} r0 GROUP BY order_id
) r ON r.order_id = o.id
LEFT JOIN {payments} p ON p.order_id = o.id
ORDER BY o.created_at, o.id";

const PRODUCTS: &str = "
SELECT p.id::text AS id, p.sku, p.reserved,
       COALESCE(sum(r.quantity) FILTER (WHERE r.status = 'reserved'), 0)::bigint AS open_reservations
FROM inventory.products p
LEFT JOIN inventory.reservations r ON r.product_id = p.id
GROUP BY p.id, p.sku, p.reserved
HAVING p.reserved <> COALESCE(sum(r.quantity) FILTER (WHERE r.status = 'reserved'), 0)
ORDER BY p.sku";

/// Every outbox, and whether it keeps published rows (marked `published_at`) or deletes them.
const OUTBOXES: &str = "
SELECT t.table_schema::text AS schema,
       EXISTS (SELECT 1 FROM information_schema.columns c
               WHERE c.table_schema = t.table_schema AND c.table_name = 'outbox'
                 AND c.column_name = 'published_at') AS keeps_published
FROM information_schema.tables t
WHERE t.table_name = 'outbox'
ORDER BY 1";

#[derive(QueryableByName)]
struct Outbox {
    #[diesel(sql_type = Text)]
    schema: String,
    #[diesel(sql_type = Bool)]
    keeps_published: bool,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The tables read besides the gateway's own, each with an empty stand-in for a service that
/// never ran (so never migrated) in this run, such as a test without inventory.
const OTHER_TABLES: &[(&str, &str, &str)] = &[
    (
        "{reservations}",
        "inventory.reservations",
        "(SELECT NULL::uuid AS order_id, NULL::uuid AS product_id, NULL::bigint AS quantity, \
         NULL::text AS status WHERE false)",
    ),
    (
        "{payments}",
        "payment.payments",
        "(SELECT NULL::uuid AS id, NULL::uuid AS order_id, NULL::text AS status, NULL::numeric AS amount, \
         NULL::numeric AS refunded_amount WHERE false)",
    ),
    (
        "{refunds}",
        "payment.refunds",
        "(SELECT NULL::uuid AS payment_id, NULL::numeric AS amount WHERE false)",
    ),
    (
        "{notifications}",
        "notifier.notifications",
        "(SELECT NULL::uuid AS order_id, NULL::text AS kind, NULL::text AS channel WHERE false)",
    ),
];

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = Bool)]
    present: bool,
}

async fn exists(conn: &mut AsyncPgConnection, table: &str) -> Result<bool, Error> {
    let sql = format!("SELECT to_regclass('{table}') IS NOT NULL AS present");
    let found: Exists = diesel::sql_query(sql)
        .get_result(conn)
        .await
        .map_err(|e| Error::Database(format!("looking for {table}: {e}")))?;
    Ok(found.present)
}

pub async fn read(url: &str) -> Result<DatabaseState, Error> {
    let failed = |what: &str, e: &dyn std::fmt::Display| Error::Database(format!("{what}: {e}"));
    let mut conn = AsyncPgConnection::establish(url).await.map_err(|e| failed("connecting", &e))?;
    let mut outboxes = Vec::new();
    let tables: Vec<Outbox> =
        diesel::sql_query(OUTBOXES).load(&mut conn).await.map_err(|e| failed("listing outboxes", &e))?;
    for table in tables {
        let unpublished = if table.keeps_published { " WHERE published_at IS NULL" } else { "" };
        let sql = format!(
            "SELECT count(*) AS n FROM \"{}\".outbox{unpublished}",
            table.schema.replace('"', "\"\"")
        );
        let count: Count = diesel::sql_query(sql)
            .get_result(&mut conn)
            .await
            .map_err(|e| failed("counting an outbox", &e))?;
        outboxes.push((table.schema, count.n));
    }
    // Orders after outboxes: an event still waiting is seen before the state it will change.
    let orders = if exists(&mut conn, "order_api.orders").await? {
        let mut sql = ORDERS.to_owned();
        for (placeholder, table, stand_in) in OTHER_TABLES {
            let source = if exists(&mut conn, table).await? { table } else { stand_in };
            sql = sql.replace(placeholder, source);
        }
        diesel::sql_query(sql).load(&mut conn).await.map_err(|e| failed("reading orders", &e))?
    } else {
        Vec::new()
    };
    let products = if exists(&mut conn, "inventory.reservations").await? {
        diesel::sql_query(PRODUCTS).load(&mut conn).await.map_err(|e| failed("reading products", &e))?
    } else {
        Vec::new()
    };
    Ok(DatabaseState { orders, products, outboxes })
}
