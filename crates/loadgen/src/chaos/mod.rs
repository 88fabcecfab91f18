//! `loadgen chaos`: the crash test. Starts the five services as real processes on a database and
//! a RabbitMQ vhost of its own, places orders from clients that retry with their
//! `Idempotency-Key`, and meanwhile kills each service with SIGKILL in turn (the gateway too)
//! and starts it again, stops and starts RabbitMQ, and restarts PostgreSQL. Then every client
//! must hold a 201 whose replay names the same order, each client must have exactly that one
//! order, and the system's invariants (crates/invariants) must hold for every order. Prints the
//! figures: orders, faults injected, time to settle. See docs/benchmarks.md.
//!
//! It stops and restarts the shared PostgreSQL and RabbitMQ: run it alone (`make chaos`, or the
//! serial `broker_outage` pass of `make test`).

mod check;
mod clients;
mod db;
mod faults;
mod system;

use anyhow::{Context, bail};
use clap::Parser;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "loadgen chaos",
    about = "Places orders while killing services and restarting PostgreSQL and RabbitMQ, then checks every order"
)]
struct Cli {
    /// How many orders (one client each, one unit of one product).
    #[arg(long, default_value_t = 3000)]
    orders: usize,
    /// How many clients are placing at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Orders started per second, so that placing lasts while the faults go on.
    #[arg(long, default_value_t = 25.0)]
    rate: f64,
    /// Where the service binaries are (target/debug or target/release); default: beside this one.
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// The repository (deploy/postgres is read from it; services run in it).
    #[arg(long)]
    repo: Option<PathBuf>,
    /// The run's own database, dropped and created afresh (kept after a failed run).
    #[arg(long, default_value = "orders_chaos")]
    database: String,
    /// The run's own RabbitMQ vhost, deleted and created afresh.
    #[arg(long, default_value = "chaos")]
    vhost: String,
    #[arg(long, env = "CHAOS_PG_HOST", default_value = "127.0.0.1:5432")]
    pg_host: String,
    /// The PostgreSQL cluster that serves `--pg-host`, restarted with `pg_ctlcluster`:
    /// `<version>/<name>`, or `<name>` for the newest installed version.
    #[arg(long, env = "CHAOS_PG_CLUSTER", default_value = "main")]
    pg_cluster: String,
    /// The RabbitMQ node that serves `--amqp-host` (`rabbitmqctl -n`); default: the local node.
    #[arg(long, env = "CHAOS_RABBITMQ_NODE")]
    rabbitmq_node: Option<String>,
    #[arg(long, env = "CHAOS_AMQP_HOST", default_value = "127.0.0.1:5672")]
    amqp_host: String,
    /// RabbitMQ's management API (the vhost is created and its queues read through it).
    #[arg(long, env = "CHAOS_RABBITMQ_MANAGEMENT", default_value = "http://127.0.0.1:15672")]
    management: String,
    /// The gateway listens here, the other services on the next four ports, its metrics on +9;
    /// 0: any free ports.
    #[arg(long, default_value_t = 18180)]
    base_port: u16,
    /// Fault rounds (each: every service killed once, one broker stop, one PostgreSQL
    /// restart). 0: as many rounds as start while orders are still being placed (at least 1).
    #[arg(long, default_value_t = 0)]
    rounds: u32,
    /// Pause before each fault.
    #[arg(long, default_value_t = 2000)]
    gap_ms: u64,
    /// How long a killed service stays down before it is started again.
    #[arg(long, default_value_t = 1000)]
    down_ms: u64,
    /// How long RabbitMQ stays stopped.
    #[arg(long, default_value_t = 5000)]
    broker_down_ms: u64,
    /// One attempt of a client; then it retries the same request.
    #[arg(long, default_value_t = 5000)]
    request_timeout_ms: u64,
    /// How long a client keeps retrying its order before it gives up.
    #[arg(long, default_value_t = 240)]
    patience_secs: u64,
    /// The gateway's IDEMPOTENCY_IN_FLIGHT_TIMEOUT_MS: a key whose request died with the killed
    /// gateway is taken over by the retry after this long (above the longest request).
    #[arg(long, default_value_t = 10000)]
    in_flight_timeout_ms: u64,
    /// How long the system may take to settle once the last fault is repaired.
    #[arg(long, default_value_t = 300)]
    settle_deadline_secs: u64,
    /// A name for the run in the Markdown row (e.g. the commit).
    #[arg(long, default_value = "run")]
    label: String,
    /// Keep the database and vhost even when the run passes.
    #[arg(long)]
    keep: bool,
}

/// One fault injected: what, when (since the first order), and how long until it was repaired
/// (the service ready again, the broker's application started, PostgreSQL accepting).
struct Fault {
    what: String,
    at: Duration,
    repaired_in: Duration,
}

struct FaultPlan {
    rounds: u32,
    gap: Duration,
    down: Duration,
    broker_down: Duration,
    servers: faults::Servers,
    pg_host: String,
}

/// Parses `args` (after `chaos`) and runs; stops cleanly on Ctrl-C, so the guards start the
/// servers again and the services are stopped.
pub async fn main(args: Vec<String>) -> anyhow::Result<()> {
    let cli = Cli::parse_from(args);
    tokio::select! {
        result = run(cli) => result,
        _ = tokio::signal::ctrl_c() => bail!("interrupted; RabbitMQ and PostgreSQL are being started again"),
    }
}

fn default_bin_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe.parent().context("this binary has no directory")?.to_owned())
}

fn default_repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.orders == 0 || cli.concurrency == 0 || cli.rate <= 0.0 {
        bail!("--orders, --concurrency and --rate must be above 0");
    }
    let bin_dir = match &cli.bin_dir {
        Some(dir) => dir.clone(),
        None => default_bin_dir()?,
    };
    let repo = cli.repo.clone().unwrap_or_else(default_repo).canonicalize()?;
    let profile = bin_dir.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_owned();
    let log_dir = repo.join("target/chaos").join(&cli.database);
    let servers = faults::Servers::new(&cli.pg_cluster, cli.rabbitmq_node.clone())?;
    // From here on, however the run ends, RabbitMQ and PostgreSQL are started again.
    let _guard = faults::Guard(servers.clone());
    say(&format!(
        "{} orders, {} clients, {}/s, {profile} binaries from {}; logs in {}",
        cli.orders,
        cli.concurrency,
        cli.rate,
        bin_dir.display(),
        log_dir.display()
    ));

    let database = db::Database::new(&cli.database, &cli.pg_host);
    database.recreate(&repo).await.context("creating the run's database")?;
    let vhost = system::Vhost::recreate(&cli.vhost, &cli.management).await?;
    let amqp_url = vhost.amqp_url(&cli.amqp_host);
    let admin_email = "chaos-admin@example.com";
    let admin_password = format!("chaos-{}", uuid::Uuid::new_v4().simple());
    let database_url = |role: &str| database.url_for(role);
    let mut system = system::System::new(&system::Config {
        bin_dir: &bin_dir,
        repo: &repo,
        log_dir: &log_dir,
        base_port: cli.base_port,
        database_url: &database_url,
        amqp_url: amqp_url.clone(),
        admin_email,
        admin_password: &admin_password,
        idempotency_in_flight_timeout: Duration::from_millis(cli.in_flight_timeout_ms),
    })?;
    system.start_all().await?;
    say("all five services ready");

    let gateway_url = system.gateway_url();
    let mut gateway = crate::gateway::Gateway::new(&gateway_url, 4)?;
    gateway.login(admin_email, &admin_password).await?;
    let sku = format!("CHAOS-{}", uuid::Uuid::now_v7().simple());
    // Stock for every order: a failed order is then a defect, not a sell-out.
    let product = gateway.create_product(&sku, cli.orders + 10).await?;
    gateway.wait_until_orderable(product, Duration::from_secs(60)).await?;

    let origin = Instant::now();
    let placing = Arc::new(AtomicBool::new(true));
    let plan = FaultPlan {
        rounds: cli.rounds,
        gap: Duration::from_millis(cli.gap_ms),
        down: Duration::from_millis(cli.down_ms),
        broker_down: Duration::from_millis(cli.broker_down_ms),
        servers,
        pg_host: cli.pg_host.clone(),
    };
    let injecting = {
        let placing = placing.clone();
        tokio::spawn(async move {
            let mut log = Vec::new();
            let result = inject(&mut system, &plan, &placing, origin, &mut log).await;
            (system, log, result)
        })
    };
    say("placing orders while injecting faults");
    let fired = clients::fire(
        clients::Plan {
            gateway: gateway_url.clone(),
            product,
            orders: cli.orders,
            concurrency: cli.concurrency,
            rate: cli.rate,
            patience: Duration::from_secs(cli.patience_secs),
            request_timeout: Duration::from_millis(cli.request_timeout_ms),
        },
        origin,
    )
    .await?;
    placing.store(false, Ordering::SeqCst);
    say(&format!(
        "every client has its answer after {:.1} s; waiting for the last fault",
        fired.last_answer.as_secs_f64()
    ));
    let (mut system, faults, injected) = injecting.await?;
    injected.context("injecting a fault")?;
    let storm_over = origin.elapsed();
    let mut problems = Vec::new();
    let died = system.exited();
    if !died.is_empty() {
        problems.push(format!("services died on their own: {}", died.join(", ")));
    }

    say("checking: every client's answer, one order per client, the invariants");
    let settle_start = Instant::now();
    let unanswered: Vec<&clients::Outcome> = fired.outcomes.iter().filter(|o| o.id.is_none()).collect();
    for outcome in unanswered.iter().take(20) {
        problems.push(format!(
            "client {} got no order: {}",
            outcome.index,
            outcome.refusal.as_deref().unwrap_or("no answer")
        ));
    }
    if unanswered.len() > 20 {
        problems.push(format!("... {} clients in all got no order", unanswered.len()));
    }
    let verdict = check::invariants(
        &database,
        &amqp_url,
        &cli.management,
        Duration::from_secs(cli.settle_deadline_secs),
    )
    .await;
    let settled_in = settle_start.elapsed();
    let invariants_line = match &verdict {
        Ok(summary) => summary.clone(),
        Err(error) => {
            problems.push(format!("{error:#}"));
            "BROKEN".to_owned()
        }
    };
    let per_client = check::one_order_per_client(&database, &fired.outcomes).await?;
    if !per_client.is_empty() {
        problems.push(format!(
            "{} client(s) do not have exactly the one order their 201 named (first {} below)",
            per_client.len(),
            per_client.len().min(40)
        ));
        problems.extend(per_client.iter().take(40).cloned());
    }
    let replays = clients::replay_all(&gateway_url, &fired.outcomes, cli.concurrency).await?;
    problems.extend(replays.iter().take(20).cloned());
    let statuses = check::statuses(&database).await?;

    let figures = Figures {
        label: &cli.label,
        profile: &profile,
        cli: &cli,
        fired: &fired,
        faults: &faults,
        storm_over,
        settled_in,
        statuses: &statuses,
        clients_off: per_client.len(),
        invariants: &invariants_line,
        passed: problems.is_empty(),
    };
    println!("{}", figures.render());
    system.stop_all().await;
    if problems.is_empty() {
        if !cli.keep {
            database.drop_database().await?;
            vhost.delete().await?;
        }
        say("passed");
        Ok(())
    } else {
        eprintln!("\nWhat broke:");
        for problem in &problems {
            eprintln!("  - {problem}");
        }
        eprintln!(
            "\nThe database `{}` and vhost `{}` are kept for a look; service logs in {}",
            cli.database,
            cli.vhost,
            log_dir.display()
        );
        bail!("the chaos run found {} problem(s)", problems.len())
    }
}

fn say(message: &str) {
    eprintln!("[chaos] {message}");
}

/// Kills, stops and restarts in rounds while orders are being placed (see `Cli::rounds`).
async fn inject(
    system: &mut system::System,
    plan: &FaultPlan,
    placing: &AtomicBool,
    origin: Instant,
    log: &mut Vec<Fault>,
) -> anyhow::Result<()> {
    let names: Vec<&'static str> = system.services.iter().map(|s| s.name).collect();
    let mut round = 0;
    loop {
        round += 1;
        for name in &names {
            tokio::time::sleep(plan.gap).await;
            let at = origin.elapsed();
            system.kill(name)?;
            tokio::time::sleep(plan.down).await;
            system.restart(name).await?;
            log.push(Fault { what: format!("kill -9 {name}"), at, repaired_in: origin.elapsed() - at });
            say(&format!("kill -9 {name}: back after {:.1} s", (origin.elapsed() - at).as_secs_f64()));
        }
        tokio::time::sleep(plan.gap).await;
        let at = origin.elapsed();
        plan.servers.broker_stop()?;
        tokio::time::sleep(plan.broker_down).await;
        plan.servers.broker_start()?;
        log.push(Fault {
            what: "RabbitMQ stop_app/start_app".into(),
            at,
            repaired_in: origin.elapsed() - at,
        });
        say(&format!(
            "RabbitMQ stopped and started: back after {:.1} s",
            (origin.elapsed() - at).as_secs_f64()
        ));
        tokio::time::sleep(plan.gap).await;
        let at = origin.elapsed();
        plan.servers.postgres_restart()?;
        faults::postgres_ready(&plan.pg_host, Duration::from_secs(60)).await?;
        log.push(Fault { what: "PostgreSQL restart".into(), at, repaired_in: origin.elapsed() - at });
        say(&format!("PostgreSQL restarted: back after {:.1} s", (origin.elapsed() - at).as_secs_f64()));
        let done = if plan.rounds > 0 { round >= plan.rounds } else { !placing.load(Ordering::SeqCst) };
        if done {
            return Ok(());
        }
    }
}

struct Figures<'a> {
    label: &'a str,
    profile: &'a str,
    cli: &'a Cli,
    fired: &'a clients::Fired,
    faults: &'a [Fault],
    storm_over: Duration,
    settled_in: Duration,
    statuses: &'a [(String, i64)],
    /// Clients without exactly the one order their answer named (e.g. a second order).
    clients_off: usize,
    invariants: &'a str,
    passed: bool,
}

impl Figures<'_> {
    fn render(&self) -> String {
        let answered = self.fired.outcomes.iter().filter(|o| o.id.is_some()).count();
        let retried = self.fired.outcomes.iter().filter(|o| o.attempts > 1).count();
        let max_attempts = self.fired.outcomes.iter().map(|o| o.attempts).max().unwrap_or(0);
        let retries = &self.fired.retries;
        let kills = self.faults.iter().filter(|f| f.what.starts_with("kill")).count();
        let broker = self.faults.iter().filter(|f| f.what.starts_with("RabbitMQ")).count();
        let postgres = self.faults.iter().filter(|f| f.what.starts_with("PostgreSQL")).count();
        let statuses = self.statuses.iter().map(|(s, n)| format!("{s} {n}")).collect::<Vec<_>>().join(", ");
        let mut out = String::new();
        let w = &mut out;
        let _ = writeln!(
            w,
            "\n== chaos: {} orders, {} clients, {} binaries ==",
            self.cli.orders, self.cli.concurrency, self.profile
        );
        let _ = writeln!(w, "clients answered     {answered} of {} (201 with an order id)", self.cli.orders);
        let _ = writeln!(
            w,
            "client retries       {} ({retried} clients retried, at most {max_attempts} attempts): connection/timeout {}, 5xx {}, 409 in flight {}, 429 {}",
            retries.total(),
            retries.connection,
            retries.server_error,
            retries.in_flight,
            retries.too_many
        );
        let _ = writeln!(
            w,
            "faults injected      {} : {kills} kill -9 (every service), {broker} RabbitMQ stop/start, {postgres} PostgreSQL restart",
            self.faults.len()
        );
        for fault in self.faults {
            let _ = writeln!(
                w,
                "  at {:>6.1} s  {:<32} repaired in {:.1} s",
                fault.at.as_secs_f64(),
                fault.what,
                fault.repaired_in.as_secs_f64()
            );
        }
        let _ = writeln!(
            w,
            "placing lasted       {:.1} s; last fault repaired at {:.1} s",
            self.fired.last_answer.as_secs_f64(),
            self.storm_over.as_secs_f64()
        );
        let _ = writeln!(
            w,
            "time to settle       {:.1} s (from the last fault repaired and every client answered, to the invariants holding)",
            self.settled_in.as_secs_f64()
        );
        let _ = writeln!(w, "orders by status     {statuses}");
        let _ = writeln!(
            w,
            "one order per client {} (clients without exactly the one order their 201 named: {})",
            if self.clients_off == 0 { "yes" } else { "NO" },
            self.clients_off
        );
        let _ = writeln!(w, "invariants           {}", self.invariants);
        let _ = writeln!(w, "result               {}", if self.passed { "PASSED" } else { "FAILED" });
        let _ = writeln!(w, "\nMarkdown:\n");
        let _ = writeln!(
            w,
            "| run | build | orders | clients | faults (kill -9 / broker / PostgreSQL) | client retries | placing (s) | time to settle (s) | result |"
        );
        let _ = writeln!(w, "|---|---|---:|---:|---|---:|---:|---:|---|");
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} | {kills} / {broker} / {postgres} | {} | {:.1} | {:.1} | {} |",
            self.label,
            self.profile,
            self.cli.orders,
            self.cli.concurrency,
            retries.total(),
            self.fired.last_answer.as_secs_f64(),
            self.settled_in.as_secs_f64(),
            if self.passed { "passed" } else { "FAILED" }
        );
        out
    }
}
