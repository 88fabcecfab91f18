//! Each service's role reaches its own schema and nothing else.

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use testkit::TestDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_role_cannot_read_another_services_schema() {
    let db = TestDatabase::create().await.unwrap();
    let schemas = [
        ("order_api", "order_api"),
        ("inventory", "inventory"),
        ("payment", "payment"),
        ("notifier", "notifier"),
        ("webhooks", "webhooks"),
    ];
    // Tables are created by the schema's owner (as migrations are); the runtime role reads them.
    for (role, own) in schemas {
        let mut owner = AsyncPgConnection::establish(&db.url_for(&format!("{role}_owner"))).await.unwrap();
        diesel::sql_query(format!("CREATE TABLE {own}.probe (id int)"))
            .execute(&mut owner)
            .await
            .unwrap_or_else(|e| panic!("{role}_owner owns {own}: {e}"));
        diesel::sql_query("CREATE TABLE probe_unqualified (id int)")
            .execute(&mut owner)
            .await
            .unwrap_or_else(|e| panic!("{role}_owner's search_path is its schema: {e}"));
        let public = diesel::sql_query("CREATE TABLE public.sneaky (id int)").execute(&mut owner).await;
        assert!(public.is_err(), "{role}_owner must not create tables in public");
        let mut conn = AsyncPgConnection::establish(&db.url_for(role)).await.unwrap();
        diesel::sql_query("SELECT * FROM probe, probe_unqualified")
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{role} reads its schema's tables: {e}"));
        let public = diesel::sql_query("CREATE TABLE public.sneaky (id int)").execute(&mut conn).await;
        assert!(public.is_err(), "{role} must not create tables in public");
    }
    for (role, _) in schemas {
        for login in [role.to_owned(), format!("{role}_owner")] {
            let mut conn = AsyncPgConnection::establish(&db.url_for(&login)).await.unwrap();
            for (_, other) in schemas.iter().filter(|(r, _)| *r != role) {
                let read = diesel::sql_query(format!("SELECT * FROM {other}.probe")).execute(&mut conn).await;
                let error = read.expect_err(&format!("{login} read {other}")).to_string();
                assert!(error.contains("permission denied"), "{login} reading {other}: {error}");
            }
        }
    }
    db.drop_database().await.unwrap();
}
