//! The per-order profile: for each service, PostgreSQL commits, statements, WAL bytes and rows
//! written, RabbitMQ publishes, deliveries and acks, the CPU of its own process and of the
//! PostgreSQL backends serving it — all divided by the accepted orders. Each source is read
//! before the first order and after the services went idle; a source that cannot be read is
//! reported as missing, never as zero.

use crate::amqpstats::{self, Messages};
use crate::cpu::{self, Sample, Watched};
use crate::pgstats;
use std::collections::HashMap;
use std::fmt::Write as _;

/// A service's process name (as in `--pids`) and its database role.
#[derive(Clone, Debug)]
pub struct Service {
    pub name: String,
    pub role: String,
}

pub fn parse_roles(list: &str) -> anyhow::Result<Vec<Service>> {
    Ok(cpu::parse_pairs(list)?.into_iter().map(|(name, role)| Service { name, role }).collect())
}

pub struct Sources {
    pub pg: Option<pgstats::Reader>,
    pub amqp: Option<amqpstats::Reader>,
}

#[derive(Default)]
pub struct Reading {
    pg: Option<pgstats::Snapshot>,
    /// utime + stime of each PostgreSQL process listed in `pg.backends`.
    pg_ticks: HashMap<i32, u64>,
    amqp: Option<amqpstats::Snapshot>,
    notes: Vec<String>,
}

impl Sources {
    pub async fn read(&mut self) -> Reading {
        let mut reading = Reading::default();
        if let Some(pg) = &mut self.pg {
            match pg.read().await {
                Ok(snapshot) => {
                    for backend in &snapshot.backends {
                        if let Ok(ticks) = cpu::process_ticks(&backend.pid.to_string()) {
                            reading.pg_ticks.insert(backend.pid, ticks);
                        }
                    }
                    reading.pg = Some(snapshot);
                }
                Err(error) => reading.notes.push(format!("PostgreSQL statistics not read: {error:#}")),
            }
        }
        if let Some(amqp) = &self.amqp {
            match amqp.read().await {
                Ok(snapshot) => reading.amqp = Some(snapshot),
                Err(error) => reading.notes.push(format!("RabbitMQ statistics not read: {error:#}")),
            }
        }
        reading
    }
}

/// One row of the table: per-order figures, `None` where the source is missing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    pub name: String,
    pub commits: Option<f64>,
    pub statements: Option<f64>,
    pub wal_bytes: Option<f64>,
    pub rows_written: Option<f64>,
    pub messages: Option<Messages>,
    pub cpu_ms: Option<f64>,
    pub pg_cpu_ms: Option<f64>,
}

pub struct Inputs<'a> {
    pub orders: usize,
    pub services: &'a [Service],
    pub pids: &'a [Watched],
    pub cpu_before: &'a Sample,
    pub cpu_after: &'a Sample,
    pub ticks_per_second: u64,
    pub before: &'a Reading,
    pub after: &'a Reading,
}

/// The table, printed for people and as Markdown.
pub fn render(inputs: &Inputs) -> String {
    let n = inputs.orders.max(1) as f64;
    let ms = |ticks: u64| ticks as f64 * 1000.0 / inputs.ticks_per_second as f64 / n;
    let per = |count: i64| count as f64 / n;
    let mut notes: Vec<String> = inputs.before.notes.iter().chain(&inputs.after.notes).cloned().collect();

    // CPU of the watched processes by name.
    let mut process_cpu: HashMap<&str, u64> = HashMap::new();
    for (i, watched) in inputs.pids.iter().enumerate() {
        let delta = inputs.cpu_after.processes[i].saturating_sub(inputs.cpu_before.processes[i]);
        *process_cpu.entry(watched.name.as_str()).or_default() += delta;
    }
    // PostgreSQL: statements per role, rows per schema (= role), backends' CPU per role.
    let pg = inputs.before.pg.as_ref().zip(inputs.after.pg.as_ref());
    let statements = pg.and_then(|(b, a)| b.statements.as_ref().zip(a.statements.as_ref()));
    if pg.is_some() && statements.is_none() {
        notes.push(
            "pg_stat_statements not loaded: statements per order from pg_stat_database only \
             (commits and WAL for the whole database / cluster, rows written per schema)"
                .into(),
        );
    }
    let mut backend_cpu: HashMap<String, u64> = HashMap::new();
    let mut ended = 0;
    if let Some((before, after)) = pg {
        for backend in &after.backends {
            let Some(now) = inputs.after.pg_ticks.get(&backend.pid) else { continue };
            let then = inputs.before.pg_ticks.get(&backend.pid).copied().unwrap_or(0);
            *backend_cpu.entry(backend.role.clone()).or_default() += now.saturating_sub(then);
        }
        ended = before.backends.iter().filter(|b| !inputs.after.pg_ticks.contains_key(&b.pid)).count();
    }
    if ended > 0 {
        notes.push(format!("{ended} PostgreSQL processes ended during the run: their CPU is not counted"));
    }
    // RabbitMQ: channel counters charged to the watched process that owns the connection.
    let amqp = inputs.before.amqp.as_ref().zip(inputs.after.amqp.as_ref());
    let mut owner_of_port: HashMap<u16, u32> = HashMap::new();
    for watched in inputs.pids {
        owner_of_port.extend(amqpstats::local_ports(watched.pid));
    }
    let mut messages_by_pid: HashMap<u32, Messages> = HashMap::new();
    if let Some((before, after)) = amqp {
        for (port, delta) in amqpstats::channel_deltas(before, after) {
            let pid = owner_of_port.get(&port).copied().unwrap_or(0);
            messages_by_pid.entry(pid).or_default().add(delta);
        }
    }

    let role_of = |role: &str| -> Option<pgstats::RoleStatements> {
        let (before, after) = statements?;
        let find = |list: &[pgstats::RoleStatements]| list.iter().find(|r| r.role == role).cloned();
        let (b, a) = (find(before).unwrap_or_default(), find(after).unwrap_or_default());
        Some(pgstats::RoleStatements {
            role: role.to_owned(),
            commits: a.commits - b.commits,
            statements: a.statements - b.statements,
            wal_bytes: a.wal_bytes - b.wal_bytes,
        })
    };
    let mut rows = Vec::new();
    for service in inputs.services {
        let stats = role_of(&service.role);
        let rows_written = pg.map(|(b, a)| {
            let get =
                |s: &pgstats::Snapshot| s.rows_written_by_schema.get(&service.role).copied().unwrap_or(0);
            per(get(a) - get(b))
        });
        let mut messages = amqp.map(|_| Messages::default());
        for watched in inputs.pids.iter().filter(|w| w.name == service.name) {
            if let (Some(total), Some(m)) = (messages.as_mut(), messages_by_pid.get(&watched.pid)) {
                total.add(*m);
            }
        }
        rows.push(Row {
            name: service.name.clone(),
            commits: stats.as_ref().map(|s| per(s.commits)),
            statements: stats.as_ref().map(|s| per(s.statements)),
            wal_bytes: stats.as_ref().map(|s| per(s.wal_bytes)),
            rows_written,
            messages,
            cpu_ms: process_cpu.get(service.name.as_str()).map(|t| ms(*t)),
            pg_cpu_ms: pg.map(|_| ms(backend_cpu.get(&service.role).copied().unwrap_or(0))),
        });
    }
    for (name, ticks) in &process_cpu {
        if !inputs.services.iter().any(|s| s.name == *name) {
            rows.push(Row { name: (*name).to_owned(), cpu_ms: Some(ms(*ticks)), ..Row::default() });
        }
    }
    if pg.is_some() {
        let other: u64 = backend_cpu
            .iter()
            .filter(|(role, _)| !role.is_empty() && !inputs.services.iter().any(|s| s.role == **role))
            .map(|(_, t)| t)
            .sum();
        let background = backend_cpu.get("").copied().unwrap_or(0);
        rows.push(Row { name: "postgres other roles".into(), pg_cpu_ms: Some(ms(other)), ..Row::default() });
        rows.push(Row {
            name: "postgres background".into(),
            pg_cpu_ms: Some(ms(background)),
            ..Row::default()
        });
    }
    if let Some((before, after)) = pg {
        let (b, a) = (&before.database, &after.database);
        rows.push(Row {
            name: "database (all roles)".into(),
            commits: Some(per(a.commits - b.commits)),
            wal_bytes: Some(per(a.cluster_wal - b.cluster_wal)),
            rows_written: Some(per(a.rows_written - b.rows_written)),
            ..Row::default()
        });
        notes.push(format!(
            "database row: commits = pg_stat_database.xact_commit (every role, single statements included; \
             {:.1} rollbacks/order), WAL = the whole cluster's WAL position (other databases included), \
             rows read {:.1}/order",
            per(a.rollbacks - b.rollbacks),
            per(a.rows_read - b.rows_read)
        ));
    }
    if let Some((before, after)) = amqp {
        let total = after.vhost.minus(before.vhost);
        rows.push(Row { name: "vhost (all)".into(), messages: Some(total), ..Row::default() });
        if let Some(unowned) = messages_by_pid.get(&0) {
            notes.push(format!(
                "channels of no watched process (loadgen's own, or closed): {:.2} published, {:.2} delivered per order",
                per(unowned.publish),
                per(unowned.deliver_get)
            ));
        }
    }
    table(&rows, inputs.orders, &notes)
}

fn table(rows: &[Row], orders: usize, notes: &[String]) -> String {
    let cell = |v: Option<f64>, digits: usize| v.map_or("–".to_owned(), |v| format!("{v:.digits$}"));
    let msg = |m: Option<Messages>, pick: fn(&Messages) -> i64| {
        cell(m.map(|m| pick(&m) as f64 / orders.max(1) as f64), 2)
    };
    let mut out = String::new();
    let _ =
        writeln!(out, "\nPer order: commits, statements, messages, CPU ms, by service ({orders} orders)\n");
    let _ = writeln!(
        out,
        "| service | commits | statements | WAL bytes | rows written | published | delivered | acked | CPU ms | its PG backends CPU ms |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.name,
            cell(row.commits, 2),
            cell(row.statements, 2),
            cell(row.wal_bytes, 0),
            cell(row.rows_written, 2),
            msg(row.messages, |m| m.publish),
            msg(row.messages, |m| m.deliver_get),
            msg(row.messages, |m| m.ack),
            cell(row.cpu_ms, 2),
            cell(row.pg_cpu_ms, 2)
        );
    }
    for note in notes {
        let _ = writeln!(out, "  note: {note}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_sources_show_as_dashes_not_zeros() {
        let rows = [
            Row {
                name: "order-api".into(),
                commits: Some(3.0),
                statements: Some(12.5),
                messages: Some(Messages { publish: 200, deliver_get: 100, ack: 100 }),
                cpu_ms: Some(2.5),
                ..Row::default()
            },
            Row { name: "rabbitmq".into(), cpu_ms: Some(1.25), ..Row::default() },
        ];
        let text = table(&rows, 100, &["a note".into()]);
        assert!(
            text.contains("| order-api | 3.00 | 12.50 | – | – | 2.00 | 1.00 | 1.00 | 2.50 | – |"),
            "{text}"
        );
        assert!(text.contains("| rabbitmq | – | – | – | – | – | – | – | 1.25 | – |"), "{text}");
        assert!(text.contains("note: a note"));
    }
}
