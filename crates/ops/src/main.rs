//! `ops`: the operator's CLI. Everything goes through the gateway's admin routes (which reach
//! RabbitMQ and the services), so it needs only the gateway's URL and an admin token.

mod client;
mod commands;
mod table;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ops",
    version,
    about = "Dead letters, stuck orders, failed notifications and webhook deliveries"
)]
pub struct Cli {
    /// The gateway's base URL.
    #[arg(long, env = "OPS_GATEWAY", default_value = "http://127.0.0.1:8080", global = true)]
    gateway: String,
    /// An admin bearer token; without it, logs in with OPS_EMAIL / OPS_PASSWORD.
    #[arg(long, env = "OPS_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Print the gateway's JSON answer instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Dead-letter queues (`<service>.inbox.dlq`).
    #[command(subcommand)]
    Dlq(Dlq),
    /// Orders stuck in `pending` or `processing`.
    #[command(subcommand)]
    Orders(Orders),
    /// Failed notifications.
    #[command(subcommand)]
    Notifications(Notifications),
    /// Failed webhook deliveries.
    #[command(subcommand)]
    Webhooks(Webhooks),
}

#[derive(Subcommand)]
pub enum Dlq {
    /// Count and show dead-lettered messages (left in their queue).
    List {
        #[arg(long)]
        queue: Option<String>,
        /// Messages shown per queue.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Send messages back to their inbox.
    Replay {
        #[arg(long)]
        queue: String,
        /// One message, by its id (the event id).
        #[arg(long, conflicts_with = "all", required_unless_present = "all")]
        id: Option<String>,
        /// Every message in the queue.
        #[arg(long)]
        all: bool,
    },
    /// Delete every message of the queue; asks to type its name unless `--yes <queue>`.
    Purge {
        #[arg(long)]
        queue: String,
        /// The queue name again, to skip the question.
        #[arg(long, value_name = "QUEUE")]
        yes: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum Orders {
    /// Orders whose last status change is older than this (`90s`, `15m`, `2h`, `1d`; default:
    /// the gateway's STUCK_ORDER_AFTER_SECONDS).
    Stuck {
        #[arg(long, value_parser = commands::parse_duration)]
        older_than: Option<u64>,
    },
    /// Enqueue the order's current step again (order.created or payment.requested).
    Redrive { id: String },
    /// Fail the order (reason `expired`).
    Fail {
        id: String,
        /// A note for the status history.
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum Notifications {
    /// Move failed notifications back to pending.
    RetryFailed {
        #[arg(long)]
        limit: Option<i64>,
    },
}

#[derive(Subcommand)]
pub enum Webhooks {
    /// Send again every failed delivery of the endpoint created at or after `--since`.
    Recover {
        endpoint_id: String,
        /// RFC 3339, e.g. 2026-11-22T00:00:00Z.
        #[arg(long)]
        since: String,
    },
    /// A fresh attempt of one delivery.
    Resend { delivery_id: String },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match commands::run(cli).await {
        Ok(output) => {
            println!("{output}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("ops: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
