//! The shared servers' faults: RabbitMQ stopped and started (`rabbitmqctl stop_app` /
//! `start_app`: the node's application goes down, every connection drops, nothing is served)
//! and PostgreSQL restarted (`pg_ctlcluster restart`: every connection drops). A [`Guard`]
//! starts both again however the run ends.

use anyhow::{Context, bail};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The shared servers the run stops and restarts.
#[derive(Clone, Debug)]
pub struct Servers {
    /// The PostgreSQL cluster as `pg_ctlcluster` names it: version and name (`15`, `main`).
    pub pg_version: String,
    pub pg_cluster: String,
    /// The RabbitMQ node for `rabbitmqctl -n`; `None`: the default node.
    pub rabbitmq_node: Option<String>,
}

impl Servers {
    /// `cluster` is `<version>/<name>` or just `<name>` (then the newest installed version).
    pub fn new(cluster: &str, rabbitmq_node: Option<String>) -> anyhow::Result<Self> {
        let (pg_version, pg_cluster) = match cluster.split_once('/') {
            Some((version, name)) => (version.to_owned(), name.to_owned()),
            None => (newest_postgres_version()?, cluster.to_owned()),
        };
        Ok(Self { pg_version, pg_cluster, rabbitmq_node })
    }

    fn rabbitmqctl(&self, args: &[&str]) -> Command {
        let mut command = Command::new("rabbitmqctl");
        if let Some(node) = &self.rabbitmq_node {
            command.args(["-n", node]);
        }
        command.arg("-q").args(args).stdin(Stdio::null());
        command
    }

    fn pg_ctlcluster(&self, action: &str) -> Command {
        let mut command = Command::new("pg_ctlcluster");
        command
            .args(["--skip-systemctl-redirect", &self.pg_version, &self.pg_cluster, action])
            .stdin(Stdio::null());
        command
    }

    pub fn broker_stop(&self) -> anyhow::Result<()> {
        run(self.rabbitmqctl(&["stop_app"]), "rabbitmqctl stop_app")
    }

    pub fn broker_start(&self) -> anyhow::Result<()> {
        run(self.rabbitmqctl(&["start_app"]), "rabbitmqctl start_app")?;
        run(self.rabbitmqctl(&["await_startup", "--timeout", "90"]), "rabbitmqctl await_startup")
    }

    /// `pg_ctlcluster restart`: a fast shutdown (every connection dropped, open transactions
    /// rolled back) and a start.
    pub fn postgres_restart(&self) -> anyhow::Result<()> {
        run(self.pg_ctlcluster("restart"), "pg_ctlcluster restart")
    }
}

fn run(mut command: Command, what: &str) -> anyhow::Result<()> {
    let output =
        command.output().with_context(|| format!("running {what} (is it installed and on PATH?)"))?;
    if !output.status.success() {
        bail!("{what} failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
}

/// The newest PostgreSQL version under /etc/postgresql (Debian's layout).
fn newest_postgres_version() -> anyhow::Result<String> {
    let mut versions: Vec<(u32, String)> = std::fs::read_dir("/etc/postgresql")
        .context("no /etc/postgresql: the PostgreSQL restart needs a Debian-style cluster (pg_ctlcluster)")?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|v| v.split('.').next()?.parse().ok().map(|n| (n, v)))
        .collect();
    versions.sort();
    versions.pop().map(|(_, v)| v).context("no cluster under /etc/postgresql")
}

/// Waits until PostgreSQL accepts connections again.
pub async fn postgres_ready(host: &str, limit: Duration) -> anyhow::Result<()> {
    let (address, port) = host.rsplit_once(':').unwrap_or((host, "5432"));
    let start = Instant::now();
    loop {
        let ready = Command::new("pg_isready")
            .args(["-q", "-h", address, "-p", port])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ready {
            return Ok(());
        }
        if start.elapsed() > limit {
            bail!("PostgreSQL was not back within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts RabbitMQ's application and PostgreSQL's cluster when dropped, whatever state the run
/// left them in (harmless when they already run).
pub struct Guard(pub Servers);

impl Drop for Guard {
    fn drop(&mut self) {
        let servers = &self.0;
        let _ = servers.rabbitmqctl(&["start_app"]).status();
        let _ = servers.rabbitmqctl(&["await_startup", "--timeout", "90"]).status();
        let running =
            servers.pg_ctlcluster("status").stdout(Stdio::null()).status().is_ok_and(|s| s.success());
        if !running {
            let _ = servers.pg_ctlcluster("start").status();
        }
    }
}
