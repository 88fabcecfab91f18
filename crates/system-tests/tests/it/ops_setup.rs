//! Operating the system: the gateway stays in its Kubernetes Service through a broker outage
//! (readiness is PostgreSQL; the broker has `/health/broker` and `broker_connected`), and
//! `make run` does not hide a service that died at start-up.

use crate::broker_outage::BrokerStopped;
use crate::support::System;
use std::process::Stdio;
use std::time::Duration;
use testkit::process::free_port;
use testkit::{TestDatabase, TestVhost, eventually};

async fn status(system: &System, path: &str) -> Option<u16> {
    Some(system.http.get(system.url(path)).send().await.ok()?.status().as_u16())
}

/// The value of `broker_connected{service="order-api"}` on the gateway's metrics listener.
async fn broker_gauge(system: &System) -> Option<String> {
    let body = system.http.get(format!("{}/metrics", system.metrics)).send().await.ok()?.text().await.ok()?;
    body.lines()
        .find(|line| line.starts_with("broker_connected{") && line.contains(r#"service="order-api""#))
        .and_then(|line| line.rsplit(' ').next())
        .map(str::to_owned)
}

/// The readiness probe of deploy/k8s/base/order-api/deployment.yaml asks `/health/ready`: with
/// RabbitMQ stopped it must stay 200 (the pod stays in the Service) and orders must be taken,
/// while `/health/broker` and the gauge say the broker is gone. Stops the shared broker, so it
/// runs alone (`broker_outage` in its name; `.config/nextest.toml`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ops_setup_broker_outage_keeps_the_gateway_ready_and_taking_orders() {
    let system = System::start().await;
    let deployment = crate::deploy::yaml("deploy/k8s/base/order-api/deployment.yaml");
    let probe = deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"]
        .as_str()
        .expect("the gateway has an HTTP readiness probe")
        .to_owned();
    let lamp = system.product("LAMP", "25.00", 10).await;
    assert_eq!(status(&system, "/health/broker").await, Some(200));
    assert_eq!(status(&system, &probe).await, Some(200));

    let outage = BrokerStopped::stop();
    eventually("/health/broker to report the broker down", Duration::from_secs(20), || async {
        (status(&system, "/health/broker").await? == 503).then_some(())
    })
    .await;
    eventually("broker_connected to drop to 0", Duration::from_secs(20), || async {
        (broker_gauge(&system).await? == "0").then_some(())
    })
    .await;
    // The gateway can still store orders, so it stays ready: Kubernetes keeps routing to it.
    assert_eq!(status(&system, &probe).await, Some(200), "{probe} during the outage");
    let (created, order) = system.order(&[(lamp, 1)], None).await;
    assert_eq!(created, 201, "accepted while the broker is down: {order}");
    assert_eq!(status(&system, &probe).await, Some(200), "{probe} after taking an order");
    let id = order["id"].as_str().unwrap().to_owned();

    drop(outage);
    eventually("/health/broker to report the broker back", Duration::from_secs(60), || async {
        (status(&system, "/health/broker").await? == 200).then_some(())
    })
    .await;
    eventually("broker_connected back to 1", Duration::from_secs(20), || async {
        (broker_gauge(&system).await? == "1").then_some(())
    })
    .await;
    assert_eq!(system.terminal(&id).await["status"], "confirmed");
    system.finish().await;
}

/// Processes whose environment holds `marker` (everything scripts/run.sh started inherits it).
fn processes_with(marker: &str) -> Vec<String> {
    let needle = marker.as_bytes();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        if environ.windows(needle.len()).any(|w| w == needle) {
            let command = std::fs::read_to_string(entry.path().join("cmdline")).unwrap_or_default();
            found.push(format!("{}: {}", entry.file_name().to_string_lossy(), command.replace('\0', " ")));
        }
    }
    found
}

/// `make run` with a BOOTSTRAP_ADMIN_PASSWORD the gateway rejects: order-api exits at start-up;
/// scripts/run.sh must notice, stop the other four and exit non-zero quoting the one-line error
/// (it used to print its banner and wait for ever). Its own ports, database and vhost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_setup_make_run_stops_everything_when_a_service_dies_at_start_up() {
    let root = testkit::repo_root();
    for service in ["order-api", "inventory", "payment", "notifier", "webhook-dispatcher"] {
        assert!(root.join("target/debug").join(service).exists(), "target/debug/{service} is built");
    }
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let scratch = std::env::temp_dir().join(format!("ops-setup-run-{name}"));
    std::fs::create_dir_all(&scratch).unwrap();
    let marker = format!("ORDERS_DB_NAME={name}");
    let mut command = tokio::process::Command::new("bash");
    command
        .arg("scripts/run.sh")
        .current_dir(&root)
        .env("ORDERS_DB_NAME", &name)
        .env("ORDERS_RABBITMQ_VHOST", &name)
        .env("SKIP_BUILD", "1")
        .env("RUN_LOG_DIR", scratch.join("logs"))
        .env("MAIL_DIR", scratch.join("mail"))
        .env("BOOTSTRAP_ADMIN_EMAIL", "admin@example.com")
        .env("BOOTSTRAP_ADMIN_PASSWORD", "short")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    // Six different ports: free ports asked for one at a time may repeat.
    let mut ports = std::collections::BTreeSet::new();
    while ports.len() < 6 {
        ports.insert(free_port());
    }
    for (key, port) in
        ["ORDER_API_PORT", "INVENTORY_PORT", "PAYMENT_PORT", "NOTIFIER_PORT", "WEBHOOKS_PORT", "METRICS_PORT"]
            .into_iter()
            .zip(ports)
    {
        command.env(key, port.to_string());
    }
    let child = command.spawn().expect("bash runs");
    let group = child.id().expect("a process id");
    let finished = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output()).await;
    if finished.is_err() {
        // Still running: the defect. Stop what it started before failing.
        let _ = std::process::Command::new("kill").args(["-TERM", "--", &format!("-{group}")]).status();
    }
    let leftovers = processes_with(&marker);
    if !leftovers.is_empty() {
        let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{group}")]).status();
    }
    let _ = TestDatabase { name: name.clone() }.drop_database().await;
    let _ = TestVhost { name: name.clone() }.delete().await;
    let _ = std::fs::remove_dir_all(&scratch);

    let output = finished.expect("make run exits within 3 minutes once order-api has died").unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "make run fails: {:?}\n{stderr}", output.status);
    let summary = stderr
        .lines()
        .find(|line| line.starts_with("[run] order-api exited (status"))
        .unwrap_or_else(|| panic!("make run names the service that died:\n{stderr}\n{stdout}"));
    assert!(
        summary.contains("order-api: error: BOOTSTRAP_ADMIN_PASSWORD must be at least 12 characters"),
        "and quotes its one-line error, which names the setting to change: {summary}"
    );
    assert!(!stdout.contains("Gateway (REST API)"), "no banner for a system that is not running:\n{stdout}");
    for noise in ["Caused by", "stack backtrace", "panicked"] {
        assert!(
            !stdout.contains(noise) && !stderr.contains(noise),
            "a start-up error is one line, not `{noise}`"
        );
    }
    assert!(leftovers.is_empty(), "make run left processes running: {leftovers:#?}");
}
