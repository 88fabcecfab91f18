//! `loadgen`: places a batch of orders through the gateway with a fixed number of concurrent
//! clients, then watches them through the saga, and reports throughput, latency and CPU per
//! order. Loopback gateways only. See docs/benchmarks.md.

mod chaos;
mod cpu;
mod fire;
mod gateway;
mod poll;
mod report;

use anyhow::{Context, bail};
use clap::Parser;
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
    if cli.orders == 0 || cli.concurrency == 0 {
        bail!("--orders and --concurrency must be at least 1");
    }
    let pids = cpu::parse_pids(&cli.pids)?;
    let ticks_per_second = cpu::ticks_per_second();
    let mut gateway = gateway::Gateway::new(&cli.gateway, cli.concurrency)?;
    gateway.login(&cli.admin_email, &cli.admin_password).await?;
    let created_after = (chrono::Utc::now() - chrono::Duration::seconds(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);

    // One product with stock for every order, plus the probe order that finds out when the
    // gateway's catalog knows it.
    let sku = format!("LOAD-{}", uuid::Uuid::now_v7().simple());
    let product = gateway.create_product(&sku, cli.orders + 1).await.context("creating the product")?;
    let catalog_wait = Instant::now();
    gateway.wait_until_orderable(product, Duration::from_secs(cli.catalog_deadline_secs)).await?;
    eprintln!("product {sku} ({product}) orderable after {} ms", catalog_wait.elapsed().as_millis());

    let cpu_before = cpu::sample(&pids)?;
    let origin = Instant::now();
    let (tell, told) = tokio::sync::mpsc::unbounded_channel();
    let poll_interval = Duration::from_millis(cli.poll_ms.max(1));
    let deadline = Duration::from_secs(cli.deadline_secs);
    eprintln!("placing {} orders with {} clients", cli.orders, cli.concurrency);
    let watching = {
        let (gateway, created_after) = (gateway.clone(), created_after.clone());
        tokio::spawn(async move {
            poll::watch(&gateway, told, origin, &created_after, poll_interval, deadline).await
        })
    };
    let fired = fire::fire(&gateway, product, cli.orders, cli.concurrency, origin, tell).await?;
    eprintln!(
        "placed in {:.1} s; waiting for the saga to finish them",
        (fired.last_answer - fired.first_sent).as_secs_f64()
    );
    let terminals = watching.await??;
    eprintln!(
        "all terminal after {:.1} s; waiting for the services to go idle",
        origin.elapsed().as_secs_f64()
    );
    let cpu_after = cpu::settle(&pids, ticks_per_second, Duration::from_secs(30)).await?;

    let run = report::Run {
        label: &cli.label,
        orders: cli.orders,
        concurrency: cli.concurrency,
        poll_interval,
        fired: &fired,
        terminals: &terminals,
        pids: &pids,
        cpu_before: &cpu_before,
        cpu_after: &cpu_after,
        ticks_per_second,
    };
    println!("{}", report::render(&run));
    if terminals.unfinished > 0 {
        bail!("{} orders were not terminal after {} s", terminals.unfinished, cli.deadline_secs);
    }
    check_invariants(&cli).await
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
