//! `order-api create-admin` against a real database: creates once, never overwrites, refuses a
//! weak password.

#![expect(clippy::unwrap_used, reason = "a test should stop at the first unexpected value")]

use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use std::process::Command;

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn create_admin(db: &testkit::TestDatabase, email: &str, password: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_order-api"))
        .args(["create-admin", "--email", email])
        .env("DATABASE_URL", db.url_for("order_api"))
        .env("ADMIN_PASSWORD", password)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_admin_makes_one_admin_and_never_overwrites_it() {
    let db = testkit::TestDatabase::create().await.unwrap();
    let first = create_admin(&db, "root@example.com", "correct horse battery staple");
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(String::from_utf8_lossy(&first.stdout).contains("created admin root@example.com"));
    let again = create_admin(&db, "root@example.com", "another long passphrase");
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("already exists"));
    let weak = create_admin(&db, "weak@example.com", "short");
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("password: must be at least 12 characters"));

    let mut conn = AsyncPgConnection::establish(&db.admin_url()).await.unwrap();
    let admins: Count = diesel::sql_query("SELECT count(*) AS n FROM order_api.users WHERE role = 'admin'")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(admins.n, 1);
    drop(conn);
    db.drop_database().await.unwrap();
}
