//! RabbitMQ down: orders are still accepted, and all complete once it is back, with no service
//! restarted by hand. Stops the shared broker, so it runs alone (see `.config/nextest.toml`).

use crate::support::System;
use std::process::Command;

/// Stops the RabbitMQ application and starts it again when dropped, even if the test fails.
pub(crate) struct BrokerStopped;

impl BrokerStopped {
    pub(crate) fn stop() -> Self {
        let status = Command::new("rabbitmqctl").arg("stop_app").status().expect("rabbitmqctl runs");
        assert!(status.success(), "rabbitmqctl stop_app failed");
        Self
    }
}

impl Drop for BrokerStopped {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl").arg("start_app").status();
        let _ = Command::new("rabbitmqctl").args(["await_startup", "--timeout", "60"]).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broker_outage_orders_are_accepted_and_complete_after_recovery() {
    let system = System::start().await;
    let lamp = system.product("LAMP", "25.00", 10).await;
    let outage = BrokerStopped::stop();
    testkit::eventually(
        "/health/broker to report the broker down",
        std::time::Duration::from_secs(20),
        || async {
            let response = system.http.get(system.url("/health/broker")).send().await.ok()?;
            (response.status().as_u16() == 503).then_some(())
        },
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let (status, order) = system.order(&[(lamp, 1)], None).await;
        assert_eq!(status, 201, "accepted while the broker is down: {order}");
        assert_eq!(order["status"], "pending");
        ids.push(order["id"].as_str().unwrap().to_owned());
    }
    drop(outage);
    for id in &ids {
        let done = system.terminal(id).await;
        assert_eq!(done["status"], "confirmed", "{done}");
    }
    assert_eq!(system.product_view(lamp).await["available"].as_i64(), Some(5));
    system.finish().await;
}
