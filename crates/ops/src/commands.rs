//! Each subcommand: one admin call, then a table (or the JSON answer with `--json`).

use crate::client::Gateway;
use crate::table::{cell, render};
use crate::{Cli, Command, Dlq, Notifications, Orders, Webhooks};
use anyhow::bail;
use serde_json::{Value, json};
use std::io::BufRead;

pub async fn run(cli: Cli) -> anyhow::Result<String> {
    // The question comes before any call, so a mistyped name changes nothing.
    if let Command::Dlq(Dlq::Purge { queue, yes }) = &cli.command {
        confirm_purge(queue, yes.as_deref())?;
    }
    let gateway = Gateway::connect(&cli.gateway, cli.token.clone()).await?;
    let answer = call(&gateway, &cli.command).await?;
    if cli.json {
        return Ok(serde_json::to_string_pretty(&answer)?);
    }
    Ok(human(&cli.command, &answer))
}

async fn call(gateway: &Gateway, command: &Command) -> anyhow::Result<Value> {
    match command {
        Command::Dlq(Dlq::List { queue, limit }) => {
            let mut path = format!("/admin/dead-letters?limit={limit}");
            if let Some(queue) = queue {
                path.push_str(&format!("&queue={}", encode(queue)));
            }
            gateway.get(&path).await
        }
        Command::Dlq(Dlq::Replay { queue, id, all: _ }) => {
            gateway.post("/admin/dead-letters/replay", json!({"queue": queue, "message_id": id})).await
        }
        Command::Dlq(Dlq::Purge { queue, yes: _ }) => {
            gateway.post("/admin/dead-letters/purge", json!({"queue": queue, "confirm": queue})).await
        }
        Command::Orders(Orders::Stuck { older_than }) => match older_than {
            Some(seconds) => gateway.get(&format!("/admin/stuck-orders?older_than_seconds={seconds}")).await,
            None => gateway.get("/admin/stuck-orders").await,
        },
        Command::Orders(Orders::Redrive { id }) => {
            gateway.post(&format!("/admin/orders/{}/redrive", encode(id)), json!({})).await
        }
        Command::Orders(Orders::Fail { id, reason }) => {
            gateway.post(&format!("/admin/orders/{}/fail", encode(id)), json!({"reason": reason})).await
        }
        Command::Notifications(Notifications::RetryFailed { limit }) => {
            let body = match limit {
                Some(limit) => json!({"limit": limit}),
                None => json!({}),
            };
            gateway.post("/notifications/retry-failed", body).await
        }
        Command::Webhooks(Webhooks::Recover { endpoint_id, since }) => {
            let path = format!("/webhook-endpoints/{}/recover", encode(endpoint_id));
            gateway.post(&path, json!({"since": since})).await
        }
        Command::Webhooks(Webhooks::Resend { delivery_id }) => {
            gateway.post(&format!("/webhook-deliveries/{}/resend", encode(delivery_id)), json!({})).await
        }
    }
}

fn human(command: &Command, answer: &Value) -> String {
    match command {
        Command::Dlq(Dlq::List { .. }) => {
            let mut out = Vec::new();
            for queue in answer["queues"].as_array().into_iter().flatten() {
                out.push(format!("{}: {} message(s)", cell(&queue["queue"]), cell(&queue["count"])));
                let rows: Vec<Vec<String>> = queue["messages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| {
                        [
                            "event_id",
                            "event_type",
                            "original_routing_key",
                            "dead_lettered_at",
                            "redelivery_count",
                            "reason",
                        ]
                        .iter()
                        .map(|key| cell(&m[*key]))
                        .collect()
                    })
                    .collect();
                if !rows.is_empty() {
                    out.push(render(
                        &["EVENT ID", "TYPE", "ROUTING KEY", "DEAD-LETTERED AT", "DELIVERIES", "REASON"],
                        &rows,
                    ));
                }
            }
            out.join("\n")
        }
        Command::Dlq(Dlq::Replay { queue, .. }) => {
            format!("replayed {} message(s) from {queue}", cell(&answer["replayed"]))
        }
        Command::Dlq(Dlq::Purge { queue, .. }) => {
            format!("purged {} message(s) from {queue}", cell(&answer["purged"]))
        }
        Command::Orders(Orders::Stuck { .. }) => {
            let rows: Vec<Vec<String>> = answer["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| {
                    ["id", "status", "since", "age_seconds", "customer_email"]
                        .iter()
                        .map(|k| cell(&o[*k]))
                        .collect()
                })
                .collect();
            format!(
                "{} order(s) stuck for more than {}s\n{}",
                rows.len(),
                cell(&answer["older_than_seconds"]),
                render(&["ORDER", "STATUS", "SINCE", "AGE (S)", "CUSTOMER"], &rows)
            )
        }
        Command::Orders(Orders::Redrive { id }) => {
            format!(
                "order {id} ({}): {} enqueued again as {}",
                cell(&answer["status"]),
                cell(&answer["event_type"]),
                cell(&answer["event_id"])
            )
        }
        Command::Orders(Orders::Fail { id, .. }) => {
            format!("order {id} is now {} ({})", cell(&answer["status"]), cell(&answer["failure_reason"]))
        }
        Command::Notifications(_) => {
            format!("{} notification(s) moved back to pending", cell(&answer["retried"]))
        }
        Command::Webhooks(Webhooks::Recover { endpoint_id, .. }) => {
            format!(
                "{} delivery(ies) of endpoint {endpoint_id} will be sent again",
                cell(&answer["recovered"])
            )
        }
        Command::Webhooks(Webhooks::Resend { delivery_id }) => {
            format!("delivery {delivery_id} queued for a fresh attempt ({})", cell(&answer["status"]))
        }
    }
}

fn confirm_purge(queue: &str, yes: Option<&str>) -> anyhow::Result<()> {
    let typed = match yes {
        Some(typed) => typed.to_owned(),
        None => {
            eprint!("This deletes every message in {queue}. Type the queue name to confirm: ");
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim().to_owned()
        }
    };
    if typed != queue {
        bail!("not confirmed (expected `{queue}`); nothing purged");
    }
    Ok(())
}

/// `90`, `90s`, `15m`, `2h`, `1d` → seconds.
pub fn parse_duration(raw: &str) -> Result<u64, String> {
    let raw = raw.trim();
    let (digits, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let number: u64 = digits.parse().map_err(|_| format!("`{raw}` is not a duration like 15m"))?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{raw}`: use s, m, h or d")),
    };
    number.checked_mul(factor).ok_or_else(|| format!("`{raw}` is too long"))
}

/// Percent-encodes a path segment or query value (ids and queue names are plain already).
fn encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("2h"), Ok(7200));
        assert_eq!(parse_duration("1d"), Ok(86_400));
        assert!(parse_duration("15 minutes").is_err());
        assert!(parse_duration("m").is_err());
    }

    #[test]
    fn purging_needs_the_exact_queue_name() {
        assert!(confirm_purge("inventory.inbox.dlq", Some("inventory.inbox.dlq")).is_ok());
        assert!(confirm_purge("inventory.inbox.dlq", Some("inventory.inbox")).is_err());
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
        assert_eq!(encode("order-api.inbox.dlq"), "order-api.inbox.dlq");
    }
}
