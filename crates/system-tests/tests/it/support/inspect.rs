//! Looking behind the gateway (the database as the superuser, the broker) and the end of every
//! test: the invariant check, then stopping the system.

use super::System;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use invariants::Expectations;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use serde_json::Value;
use std::time::Duration;

impl System {
    /// Runs a statement as the superuser on this test's database (test set-up only).
    pub async fn execute(&self, sql: &str) {
        let mut conn = AsyncPgConnection::establish(&self.db.admin_url()).await.expect("admin connection");
        diesel::sql_query(sql).execute(&mut conn).await.expect(sql);
    }

    /// Runs a `SELECT count(*) AS n ...` as the superuser on this test's database.
    pub async fn count(&self, sql: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = AsyncPgConnection::establish(&self.db.admin_url()).await.expect("admin connection");
        diesel::sql_query(sql).get_result::<Count>(&mut conn).await.expect(sql).n
    }

    pub async fn text(&self, sql: &str) -> Vec<String> {
        #[derive(diesel::QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            t: String,
        }
        let mut conn = AsyncPgConnection::establish(&self.db.admin_url()).await.expect("admin connection");
        diesel::sql_query(sql).load::<Row>(&mut conn).await.expect(sql).into_iter().map(|r| r.t).collect()
    }

    /// Every event published so far, decoded.
    pub fn events(&self) -> Vec<Value> {
        self.spy.lock().unwrap().iter().filter_map(|bytes| serde_json::from_slice(bytes).ok()).collect()
    }

    pub async fn publish_raw(&self, routing_key: &str, payload: &[u8]) {
        let connection =
            lapin::Connection::connect(&self.vhost.amqp_url(), lapin::ConnectionProperties::default())
                .await
                .unwrap();
        let channel = connection.create_channel().await.unwrap();
        channel.confirm_select(Default::default()).await.unwrap();
        channel
            .basic_publish(
                messaging::topology::EXCHANGE.into(),
                routing_key.into(),
                Default::default(),
                payload,
                lapin::BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        let _ = connection.close(200, "done".into()).await;
    }

    pub async fn queue_depth(&self, queue: &str) -> u32 {
        let connection =
            lapin::Connection::connect(&self.vhost.amqp_url(), lapin::ConnectionProperties::default())
                .await
                .unwrap();
        let channel = connection.create_channel().await.unwrap();
        let declared = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions { passive: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let _ = connection.close(200, "done".into()).await;
        declared.message_count()
    }

    /// This system's database (as the superuser) and vhost, for the invariant check.
    pub fn invariants_target(&self) -> invariants::Target {
        let management =
            std::env::var("TEST_RABBITMQ_MANAGEMENT").unwrap_or_else(|_| "http://127.0.0.1:15672".to_owned());
        invariants::Target::new(self.db.admin_url(), self.vhost.amqp_url())
            .with_management(management, "guest", "guest")
    }

    /// Every test ends here: the system's invariants (crates/invariants: no dead letters, outboxes
    /// drained, every order terminal with its stock, money and invoice settled) must hold once
    /// it settles; then the system stops. A failure prints what broke, per order.
    pub async fn finish(self) {
        self.finish_with(|expected| expected).await;
    }

    /// [`Self::finish`], with the exceptions the test is about declared, e.g.
    /// `|e| e.expect_dead_letters("inventory.inbox.dlq", 1)`.
    pub async fn finish_with(self, declare: impl FnOnce(Expectations) -> Expectations) {
        let expected = declare(Expectations::new());
        let verdict =
            invariants::verify(&self.invariants_target(), &expected, invariants::SETTLE_TIMEOUT).await;
        if let Err(broken) = &verdict {
            eprintln!("{broken}");
        }
        // Stopped (and its database dropped) whatever the verdict.
        self.stop().await;
        if let Err(broken) = verdict {
            panic!("{broken}");
        }
    }

    pub async fn stop(self) {
        self.cancel.cancel();
        for task in self.tasks {
            let finished = tokio::time::timeout(Duration::from_secs(30), task).await;
            assert!(matches!(finished, Ok(Ok(Ok(())))), "a service did not stop cleanly: {finished:?}");
        }
        let _ = self.db.drop_database().await;
        let _ = self.vhost.delete().await;
    }
}
