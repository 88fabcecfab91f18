//! The five services as real processes (the built binaries), each on a fixed port for the whole
//! run so that a service killed with SIGKILL comes back where its callers expect it.

use anyhow::{Context, bail};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// binary, database role, port offset
pub const SERVICES: [(&str, &str, u16); 5] = [
    ("order-api", "order_api", 0),
    ("inventory", "inventory", 1),
    ("payment", "payment", 2),
    ("notifier", "notifier", 3),
    ("webhook-dispatcher", "webhooks", 4),
];

/// The key the dispatcher seals endpoint secrets with in this run (32 bytes, base64): a
/// throwaway, like the rest of the run's data.
const RUN_WEBHOOK_SECRET_KEY: &str = "Y2hhb3MtcnVuLXdlYmhvb2stc2VjcmV0LWtleS0zMmI=";

/// A port that was free a moment ago (the OS does not hand it out again at once).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

pub struct Service {
    pub name: &'static str,
    pub port: u16,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

pub struct System {
    pub services: Vec<Service>,
    bin_dir: PathBuf,
    repo: PathBuf,
    log_dir: PathBuf,
    http: reqwest::Client,
    /// The pid of each service's current process, written to `<log_dir>/pids` so that
    /// scripts/chaos.sh can stop them if this process itself is killed.
    pid_file: PathBuf,
}

pub struct Config<'a> {
    pub bin_dir: &'a Path,
    pub repo: &'a Path,
    pub log_dir: &'a Path,
    pub base_port: u16,
    pub database_url: &'a dyn Fn(&str) -> String,
    pub amqp_url: String,
    pub admin_email: &'a str,
    pub admin_password: &'a str,
    pub idempotency_in_flight_timeout: Duration,
}

impl System {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        std::fs::create_dir_all(config.log_dir)?;
        let work = config.log_dir.join("run");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(work.join("mail"))?;
        // Base port 0: a free port each (nothing else may listen on fixed ones in a test run).
        let ports: Vec<u16> = (0..10)
            .map(|offset| if config.base_port == 0 { free_port() } else { config.base_port + offset })
            .collect();
        let port = |offset: u16| ports[usize::from(offset)];
        let url = |offset: u16| format!("http://127.0.0.1:{}", port(offset));
        let mut services = Vec::new();
        for (name, role, offset) in SERVICES {
            // Each run's logs alone (a restarted service appends to its own).
            let _ = std::fs::remove_file(config.log_dir.join(format!("{name}.log")));
            let binary = config.bin_dir.join(name);
            if !binary.is_file() {
                bail!("{} is missing: build the services first (cargo build --bins)", binary.display());
            }
            let env: Vec<(&str, String)> = vec![
                ("DATABASE_URL", (config.database_url)(role)),
                ("AMQP_URL", config.amqp_url.clone()),
                ("HTTP_ADDR", format!("127.0.0.1:{}", port(offset))),
                ("RUST_LOG", "warn".into()),
                ("LOG_FORMAT", "pretty".into()),
                ("SMTP_URL", String::new()),
                ("MAIL_DIR", work.join("mail").display().to_string()),
                ("JWT_KEY_DIR", work.join("jwt").display().to_string()),
                ("BOOTSTRAP_ADMIN_EMAIL", config.admin_email.into()),
                ("BOOTSTRAP_ADMIN_PASSWORD", config.admin_password.into()),
                // All the load comes from one address and one guest.
                ("RATE_LIMIT_PER_SECOND", "0".into()),
                ("MAX_OPEN_ORDERS_PER_CLIENT", "0".into()),
                // A request the killed gateway never answered holds its key for this long;
                // then the client's retry takes it over.
                (
                    "IDEMPOTENCY_IN_FLIGHT_TIMEOUT_MS",
                    config.idempotency_in_flight_timeout.as_millis().to_string(),
                ),
                ("INVENTORY_URL", url(1)),
                ("PAYMENT_URL", url(2)),
                ("NOTIFIER_URL", url(3)),
                ("WEBHOOKS_URL", url(4)),
                ("PUBLIC_BASE_URL", url(0)),
                ("METRICS_ADDR", format!("127.0.0.1:{}", port(9))),
                ("PAYMENT_SIMULATOR_ENABLED", "true".into()),
                ("WEBHOOK_SECRET_KEY", RUN_WEBHOOK_SECRET_KEY.into()),
                ("WEBHOOK_SECRET_KEY_FILE", String::new()),
            ];
            let env = env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            services.push(Service { name, port: port(offset), env, child: None });
        }
        Ok(Self {
            services,
            bin_dir: config.bin_dir.to_owned(),
            repo: config.repo.to_owned(),
            log_dir: config.log_dir.to_owned(),
            http: reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(2)).build()?,
            pid_file: config.log_dir.join("pids"),
        })
    }

    pub fn gateway_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.services[0].port)
    }

    fn index(&self, name: &str) -> anyhow::Result<usize> {
        self.services.iter().position(|s| s.name == name).with_context(|| format!("no service {name}"))
    }

    /// Starts every service and waits until each is ready.
    pub async fn start_all(&mut self) -> anyhow::Result<()> {
        for i in 0..self.services.len() {
            self.spawn(i)?;
        }
        for i in 0..self.services.len() {
            self.wait_ready(i, Duration::from_secs(90)).await?;
        }
        Ok(())
    }

    fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let service = &mut self.services[i];
        let log_path = self.log_dir.join(format!("{}.log", service.name));
        let log = OpenOptions::new().create(true).append(true).open(&log_path)?;
        let mut command = Command::new(self.bin_dir.join(service.name));
        command
            .current_dir(&self.repo)
            .env_remove("CONFIG_FILE")
            .envs(service.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = command.spawn().with_context(|| format!("starting {}", service.name))?;
        service.child = Some(child);
        self.write_pids();
        Ok(())
    }

    fn write_pids(&self) {
        let pids: Vec<String> =
            self.services.iter().filter_map(|s| s.child.as_ref()).map(|c| c.id().to_string()).collect();
        let _ = std::fs::write(&self.pid_file, pids.join("\n") + "\n");
    }

    /// Polls `/health/ready` until it answers 200; fails at once if the process exited.
    pub async fn wait_ready(&mut self, i: usize, limit: Duration) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let url = format!("http://127.0.0.1:{}/health/ready", self.services[i].port);
        loop {
            if let Ok(response) = self.http.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(start.elapsed());
            }
            let service = &mut self.services[i];
            if let Some(child) = service.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!(
                    "{} exited ({status}) instead of becoming ready; see {}",
                    service.name,
                    self.log_dir.join(format!("{}.log", service.name)).display()
                );
            }
            if start.elapsed() > limit {
                bail!("{} was not ready within {limit:?}", service.name);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL (`kill -9`: no drain, no flush), reaped at once.
    pub fn kill(&mut self, name: &str) -> anyhow::Result<()> {
        let i = self.index(name)?;
        if let Some(mut child) = self.services[i].child.take() {
            child.kill().with_context(|| format!("kill -9 {name}"))?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts `name` again and waits for it; returns how long it took to be ready.
    pub async fn restart(&mut self, name: &str) -> anyhow::Result<Duration> {
        let i = self.index(name)?;
        self.spawn(i)?;
        self.wait_ready(i, Duration::from_secs(90)).await
    }

    /// Any service that died on its own (not killed by the run), with its exit status.
    pub fn exited(&mut self) -> Vec<String> {
        let mut dead = Vec::new();
        for service in &mut self.services {
            if let Some(child) = service.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                dead.push(format!("{} ({status})", service.name));
            }
        }
        dead
    }

    /// SIGTERM, then SIGKILL after a grace period.
    pub async fn stop_all(&mut self) {
        for service in &self.services {
            if let Some(child) = service.child.as_ref() {
                let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        for service in &mut self.services {
            if let Some(mut child) = service.child.take() {
                while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

impl Drop for System {
    fn drop(&mut self) {
        // A run that failed half-way must not leave services running.
        for service in &mut self.services {
            if let Some(mut child) = service.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// A private RabbitMQ vhost for the run, through the management API, with `guest` allowed on it
/// (the services declare their own queues at start, as in the tests and `make bench`).
pub struct Vhost {
    pub name: String,
    management: String,
    http: reqwest::Client,
}

impl Vhost {
    pub async fn recreate(name: &str, management: &str) -> anyhow::Result<Self> {
        let vhost = Self {
            name: name.to_owned(),
            management: management.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build()?,
        };
        vhost.delete().await?;
        vhost
            .http
            .put(format!("{}/api/vhosts/{name}", vhost.management))
            .basic_auth("guest", Some("guest"))
            .send()
            .await?
            .error_for_status()
            .context("creating the vhost (is the RabbitMQ management plugin on?)")?;
        vhost
            .http
            .put(format!("{}/api/permissions/{name}/guest", vhost.management))
            .basic_auth("guest", Some("guest"))
            .json(&serde_json::json!({"configure": ".*", "write": ".*", "read": ".*"}))
            .send()
            .await?
            .error_for_status()?;
        Ok(vhost)
    }

    pub fn amqp_url(&self, host: &str) -> String {
        format!("amqp://guest:guest@{host}/{}", self.name)
    }

    pub async fn delete(&self) -> anyhow::Result<()> {
        self.http
            .delete(format!("{}/api/vhosts/{}", self.management, self.name))
            .basic_auth("guest", Some("guest"))
            .send()
            .await?;
        Ok(())
    }
}
