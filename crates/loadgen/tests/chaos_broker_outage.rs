//! The short crash test of `make test`: 300 orders from retrying clients while each service is
//! killed with SIGKILL once (the gateway too) and restarted, RabbitMQ is stopped and started once
//! and PostgreSQL is restarted once; then every client holds its order's 201 (the same id on
//! replay), has exactly that one order, and the invariants hold for every order.
//!
//! It stops the shared RabbitMQ and PostgreSQL, so its name holds `broker_outage`: scripts/test.sh
//! runs it in the second, serial pass, alone (.config/nextest.toml). The services run as the
//! real binaries beside this test's `loadgen` (target/debug: `cargo build --workspace --bins`).
//! `make chaos` is the long run (scripts/chaos.sh).

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn chaos_broker_outage_every_client_answered_and_every_order_consistent() {
    // Named like the suite's other test data, so scripts/clean-test-data.sh drops what a killed
    // run leaves behind.
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["chaos", "--orders", "300", "--concurrency", "16", "--rate", "10", "--rounds", "1"])
        .args(["--gap-ms", "1000", "--down-ms", "500", "--broker-down-ms", "3000"])
        .args(["--base-port", "0", "--database", &name, "--vhost", &name, "--label", "make-test"])
        .args(["--settle-deadline-secs", "60", "--patience-secs", "90"])
        .output()
        .unwrap_or_else(|e| panic!("running loadgen: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\n{stderr}");
    assert!(output.status.success(), "the chaos run failed ({}):\n{stderr}", output.status);
    assert!(stdout.contains("clients answered     300 of 300"), "{stdout}");
    assert!(stdout.contains("faults injected      7 : 5 kill -9"), "{stdout}");
    assert!(stdout.contains("result               PASSED"), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(200), "took {:?}", started.elapsed());
}
