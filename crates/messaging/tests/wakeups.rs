//! What the hot path no longer pays for, with the guarantees kept: a relay woken by another
//! service's commit, and a round trip on every pool checkout (a closed connection is still
//! never reused). Real PostgreSQL, a database of its own.

#![expect(clippy::unwrap_used, reason = "a test should stop at the first unexpected value")]

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::StreamExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use testkit::infra::TestDatabase;

async fn migrated(db: &TestDatabase, role: &str) -> platform::db::PgPool {
    let pool = platform::db::pool(&db.url_for(role), 2).unwrap();
    platform::db::migrate(&pool, platform::db::lock_key(role), vec![messaging::MIGRATIONS]).await.unwrap();
    pool
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outbox_commit_wakes_only_its_own_services_relay() {
    let db = TestDatabase::create().await.unwrap();
    let inventory = migrated(&db, "inventory").await;
    let _payment = migrated(&db, "payment").await;
    let mut listener = AsyncPgConnection::establish(&db.admin_url()).await.unwrap();
    listener
        .batch_execute("LISTEN outbox; LISTEN outbox_inventory; LISTEN outbox_payment; LISTEN marker")
        .await
        .unwrap();

    let mut conn = inventory.get().await.unwrap();
    conn.batch_execute(
        "INSERT INTO outbox (event_id, routing_key, payload) VALUES (gen_random_uuid(), 'stock.reserved', '\\x7b7d')",
    )
    .await
    .unwrap();
    // Notifications arrive in commit order: everything the insert caused comes before this one.
    let mut admin = AsyncPgConnection::establish(&db.admin_url()).await.unwrap();
    admin.batch_execute("NOTIFY marker").await.unwrap();

    let mut seen = Vec::new();
    let mut notifications = std::pin::pin!(listener.notifications_stream());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let next = tokio::time::timeout_at(deadline, notifications.next()).await;
        let Ok(Some(Ok(notification))) = next else { panic!("no marker notification; saw {seen:?}") };
        if notification.channel == "marker" {
            break;
        }
        seen.push(notification.channel);
    }
    assert_eq!(seen, vec!["outbox_inventory".to_owned()], "only inventory's relay channel is notified");
    drop(conn);
    db.drop_database().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_the_server_closed_is_replaced_by_a_fresh_one() {
    let db = TestDatabase::create().await.unwrap();
    let pool = platform::db::pool(&db.url_for("inventory"), 1).unwrap();
    let pid = backend_pid(&pool).await.unwrap();
    let mut admin = AsyncPgConnection::establish(&db.admin_url()).await.unwrap();
    admin.batch_execute(&format!("SELECT pg_terminate_backend({pid})")).await.unwrap();

    // The pool hands out no connection it knows is closed; one that it cannot know about yet
    // fails its statement once, is dropped as broken, and the next checkout is a new one.
    let failures = AtomicUsize::new(0);
    let fresh = testkit::eventually("a working connection from the pool", Duration::from_secs(10), || {
        let pool = pool.clone();
        let failures = &failures;
        async move {
            let outcome = backend_pid(&pool).await;
            if outcome.is_err() {
                failures.fetch_add(1, Ordering::SeqCst);
            }
            outcome.ok()
        }
    })
    .await;
    assert_ne!(fresh, pid, "the terminated backend's connection was handed out again");
    let failures = failures.into_inner();
    assert!(failures <= 1, "{failures} statements failed on a closed connection");
    db.drop_database().await.unwrap();
}

async fn backend_pid(pool: &platform::db::PgPool) -> anyhow::Result<i32> {
    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    let mut conn = pool.get().await?;
    Ok(diesel::sql_query("SELECT pg_backend_pid() AS pid").get_result::<Pid>(&mut conn).await?.pid)
}
