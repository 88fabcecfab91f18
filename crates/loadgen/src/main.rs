//! `loadgen`: places orders through the gateway — a fixed number of concurrent clients (closed
//! loop) or a fixed rate (open loop) — watches them through the saga, and reports throughput,
//! latency, CPU per order and the per-order profile, with a chart of the run. Loopback gateways
//! only. See docs/benchmarks.md.

mod amqpstats;
mod chaos;
mod chart;
mod cpu;
mod fire;
mod gateway;
mod growth;
mod pgstats;
mod poll;
mod profile;
mod progress;
mod report;
mod timeline;

use anyhow::{Context, bail};
use clap::Parser;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "loadgen", about = "Fires orders at the gateway and measures the system end to end")]
struct Cli {
    /// Base URL of the gateway (order-api); must be a loopback address.
    #[arg(long, env = "GATEWAY", default_value = "http://127.0.0.1:8080")]
    gateway: String,
    /// How many orders to place (one product, one unit each).
    #[arg(long, env = "ORDERS", default_value_t = 2000)]
    orders: usize,
    /// How many clients place orders at once.
    #[arg(long, env = "CONCURRENCY", default_value_t = 64)]
    concurrency: usize,
    /// Open loop: offer this many orders a second for `--duration` seconds, whatever the answers
    /// do (replaces --orders and --concurrency).
    #[arg(long)]
    rate: Option<f64>,
    /// With --rate: for how many seconds.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Where to write the chart (`timeline.svg`) and the per-order profile (`profile.md`).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Each service's database role (`service=role`), to charge statements and backends to it.
    #[arg(
        long,
        default_value = "order-api=order_api,inventory=inventory,payment=payment,notifier=notifier,webhook-dispatcher=webhooks"
    )]
    db_roles: String,
    /// The run's RabbitMQ vhost: its publishes, deliveries and acks go into the profile (read
    /// from the management API at --invariants-management-url).
    #[arg(long)]
    profile_vhost: Option<String>,
    /// How long the management API's counters get to catch up before the last reading.
    #[arg(long, default_value_t = 6)]
    stats_settle_secs: u64,
    /// pgbench's tps on this machine for one stock UPDATE + one INSERT per transaction:
    /// the report then gives confirmed/s as a fraction of it.
    #[arg(long)]
    pgbench_tps: Option<f64>,
    /// Processes whose CPU time to account for: `name=pid,name=pid`.
    #[arg(long, default_value = "")]
    pids: String,
    /// A name for the run in the Markdown row (e.g. the commit).
    #[arg(long, default_value = "run")]
    label: String,
    /// How often the confirmed/failed lists are walked.
    #[arg(long, default_value_t = 100)]
    poll_ms: u64,
    /// How long to wait for every order to become terminal.
    #[arg(long, default_value_t = 600)]
    deadline_secs: u64,
    /// The admin to log in as (create the product, list orders); bench.sh bootstraps it.
    #[arg(long, env = "BENCH_ADMIN_EMAIL", default_value = "bench-admin@example.com")]
    admin_email: String,
    #[arg(long, env = "BENCH_ADMIN_PASSWORD", default_value = "")]
    admin_password: String,
    /// How long the gateway may take to learn the new product.
    #[arg(long, default_value_t = 30)]
    catalog_deadline_secs: u64,
    /// After the run, the system's invariants (crates/invariants) are checked on this database
    /// (a connection that reads every service's schema, e.g. the superuser); without it, they
    /// are not checked.
    #[arg(long, env = "INVARIANTS_DATABASE_URL")]
    invariants_database_url: Option<String>,
    /// The run's vhost, for the invariants' dead-letter and queue checks.
    #[arg(long, env = "INVARIANTS_AMQP_URL", default_value = "amqp://guest:guest@127.0.0.1:5672/%2F")]
    invariants_amqp_url: String,
    /// The RabbitMQ management API (guest/guest), which lists the vhost's queues.
    #[arg(long, env = "INVARIANTS_MANAGEMENT_URL", default_value = "http://127.0.0.1:15672")]
    invariants_management_url: String,
    /// How long the invariants may take to hold once every order is terminal.
    #[arg(long, default_value_t = 20)]
    invariants_settle_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `loadgen chaos ...`: the crash test (chaos/mod.rs), with its own options.
    let mut args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("chaos") {
        args.remove(1);
        return chaos::main(args).await;
    }
    let cli = Cli::parse();
    let orders = match cli.rate {
        Some(rate) if !(rate > 0.0 && rate.is_finite()) || cli.duration == 0 => {
            bail!("--rate must be a positive number of orders a second and --duration at least 1 s")
        }
        Some(rate) => ((rate * cli.duration as f64).round() as usize).max(1),
        None => cli.orders,
    };
    if orders == 0 || cli.concurrency == 0 {
        bail!("--orders and --concurrency must be at least 1");
    }
    let pids = cpu::parse_pids(&cli.pids)?;
    let services = profile::parse_roles(&cli.db_roles)?;
    let ticks_per_second = cpu::ticks_per_second();
    let idle_rss = idle_rss(&pids);
    let mut gateway = gateway::Gateway::new(&cli.gateway, cli.concurrency)?;
    gateway.login(&cli.admin_email, &cli.admin_password).await?;
    let created_after = (chrono::Utc::now() - chrono::Duration::seconds(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);

    // One product with stock for every order, plus the probe order that finds out when the
    // gateway's catalog knows it.
    let sku = format!("LOAD-{}", uuid::Uuid::now_v7().simple());
    let product = gateway.create_product(&sku, orders + 1).await.context("creating the product")?;
    let catalog_wait = Instant::now();
    gateway.wait_until_orderable(product, Duration::from_secs(cli.catalog_deadline_secs)).await?;
    eprintln!("product {sku} ({product}) orderable after {} ms", catalog_wait.elapsed().as_millis());

    let mut sources = profile_sources(&cli).await;
    let profile_before = sources.read().await;
    let cpu_before = cpu::sample(&pids)?;
    let origin = Instant::now();
    let counters = Arc::new(progress::Counters::default());
    let ticker = progress::start(counters.clone(), pids.clone(), origin);
    let (tell, told) = tokio::sync::mpsc::unbounded_channel();
    let poll_interval = Duration::from_millis(cli.poll_ms.max(1));
    let deadline = Duration::from_secs(cli.deadline_secs);
    let watching = {
        let (gateway, created_after, counters) = (gateway.clone(), created_after.clone(), counters.clone());
        tokio::spawn(async move {
            poll::watch(&gateway, told, origin, &created_after, poll_interval, deadline, &counters).await
        })
    };
    let sink = fire::Sink { origin, tell, counters };
    let (fired, mode, clients) = match cli.rate {
        Some(rate) => {
            eprintln!("offering {orders} orders at {rate}/s (open loop)");
            let fired = fire::fire_at_rate(&gateway, product, orders, rate, sink).await?;
            (fired, format!("{rate}/s for {} s (open loop)", cli.duration), format!("{rate}/s open"))
        }
        None => {
            eprintln!("placing {orders} orders with {} clients", cli.concurrency);
            let fired = fire::fire(&gateway, product, orders, cli.concurrency, sink).await?;
            let mode = format!("{} concurrent clients (closed loop)", cli.concurrency);
            (fired, mode, cli.concurrency.to_string())
        }
    };
    eprintln!(
        "placed in {:.1} s; waiting for the saga to finish them",
        (fired.last_answer - fired.first_sent).as_secs_f64()
    );
    let terminals = watching.await??;
    let ticks = ticker.finish().await;
    eprintln!(
        "all terminal after {:.1} s; waiting for the services to go idle",
        origin.elapsed().as_secs_f64()
    );
    let cpu_after = cpu::settle(&pids, ticks_per_second, Duration::from_secs(30)).await?;
    if sources.amqp.is_some() {
        tokio::time::sleep(Duration::from_secs(cli.stats_settle_secs)).await;
    }
    let profile_after = sources.read().await;

    let run = report::Run {
        label: &cli.label,
        orders,
        mode,
        clients,
        reference_tps: cli.pgbench_tps,
        poll_interval,
        fired: &fired,
        terminals: &terminals,
        pids: &pids,
        cpu_before: &cpu_before,
        cpu_after: &cpu_after,
        ticks_per_second,
    };
    println!("{}", report::render(&run));
    println!("{idle_rss}");
    let mut confirmed: Vec<Duration> =
        terminals.terminal.values().filter(|t| t.confirmed).map(|t| t.seen_at).collect();
    confirmed.sort_unstable();
    println!("{}", growth::render(&confirmed, &ticks, ticks_per_second));
    let table = profile::render(&profile::Inputs {
        orders: fired.accepted.len(),
        services: &services,
        pids: &pids,
        cpu_before: &cpu_before,
        cpu_after: &cpu_after,
        ticks_per_second,
        before: &profile_before,
        after: &profile_after,
    });
    println!("{table}");
    if let Some(dir) = &cli.out_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let seconds = timeline::build(&fired.accepted, &terminals.terminal);
        let title = format!("{}: {orders} orders, {}", cli.label, run.mode);
        chart::write(&dir.join("timeline.svg"), &title, &seconds)?;
        std::fs::write(dir.join("profile.md"), format!("# {title}\n{table}"))?;
        eprintln!("chart and profile written to {}/timeline.svg and profile.md", dir.display());
    }
    if terminals.unfinished > 0 {
        bail!("{} orders were not terminal after {} s", terminals.unfinished, cli.deadline_secs);
    }
    check_invariants(&cli).await
}

/// Resident memory of every watched process before any load, one line per process.
fn idle_rss(pids: &[cpu::Watched]) -> String {
    let mut text = String::from("idle RSS MiB        ");
    for watched in pids {
        match cpu::rss_kib(watched.pid) {
            Ok(kib) => text.push_str(&format!(" {} {:.1} ", watched.name, kib as f64 / 1024.0)),
            Err(_) => text.push_str(&format!(" {} ? ", watched.name)),
        }
    }
    text.push_str("  (after start-up, before the first request)");
    text
}

/// The profile's sources: PostgreSQL's statistics through the invariants' superuser URL, and
/// RabbitMQ's counters for --profile-vhost. Either may be missing; the table says so.
async fn profile_sources(cli: &Cli) -> profile::Sources {
    let pg = match &cli.invariants_database_url {
        Some(url) => match pgstats::Reader::connect(url).await {
            Ok(reader) => Some(reader),
            Err(error) => {
                eprintln!("no PostgreSQL statistics in the profile: {error:#}");
                None
            }
        },
        None => None,
    };
    let amqp = cli
        .profile_vhost
        .as_deref()
        .and_then(|vhost| amqpstats::Reader::new(&cli.invariants_management_url, vhost).ok());
    profile::Sources { pg, amqp }
}

/// The same check every system test ends with: no dead letters, outboxes drained, every order's
/// stock, money and invoice settled. Prints the verdict; an error (non-zero exit) when broken.
async fn check_invariants(cli: &Cli) -> anyhow::Result<()> {
    let Some(database_url) = &cli.invariants_database_url else {
        eprintln!("invariants not checked: no --invariants-database-url");
        return Ok(());
    };
    let target = invariants::Target::new(database_url.as_str(), cli.invariants_amqp_url.as_str())
        .with_management(cli.invariants_management_url.as_str(), "guest", "guest");
    let settle = Duration::from_secs(cli.invariants_settle_secs);
    match invariants::verify(&target, &invariants::Expectations::new(), settle).await {
        Ok(report) => {
            println!("{report}");
            Ok(())
        }
        Err(invariants::Error::Broken(report)) => {
            println!("{report}");
            bail!("the system's invariants do not hold after the run (see above)")
        }
        Err(other) => Err(other).context("checking the system's invariants"),
    }
}
