//! A service binary run as a real process, so tests can send it SIGTERM and read its exit code.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct ServiceProcess {
    child: Child,
    pub port: u16,
}

/// A port that was free a moment ago (the OS does not hand it out again at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

impl ServiceProcess {
    /// Starts `binary` on a fresh port with `env` (plus `HTTP_ADDR`) and waits until
    /// `/health/ready` answers 200.
    pub async fn start(binary: &str, env: &[(&str, String)]) -> anyhow::Result<Self> {
        let port = free_port();
        let mut command = Command::new(binary);
        command.env("HTTP_ADDR", format!("127.0.0.1:{port}")).env("RUST_LOG", "warn").stdin(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn()?;
        let process = Self { child, port };
        let url = format!("http://127.0.0.1:{port}/health/ready");
        let client = reqwest::Client::new();
        crate::eventually("the service to be ready", Duration::from_secs(60), || {
            let (client, url) = (client.clone(), url.clone());
            async move { client.get(&url).send().await.ok().filter(|r| r.status().is_success()).map(|_| ()) }
        })
        .await;
        Ok(process)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn terminate(&self) -> anyhow::Result<()> {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status()?;
        anyhow::ensure!(status.success(), "kill -TERM failed");
        Ok(())
    }

    /// Waits for the process to exit, at most `timeout`.
    pub async fn wait(mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                anyhow::bail!("the service did not exit within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        // A test that failed half-way must not leave a service running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
