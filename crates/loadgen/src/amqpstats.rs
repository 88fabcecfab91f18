//! RabbitMQ's counters for the bench vhost from the management API: the vhost's totals, and
//! per channel its publishes, deliveries and acks, charged to the process that owns the channel's
//! TCP connection (the connection's client port, found among the sockets in `/proc/<pid>/fd`).
//! The management API refreshes these counters every `collect_statistics_interval` (5 s by
//! default), so a reading lags by up to that much.

use anyhow::Context;
use serde::Deserialize;
use std::collections::HashMap;
use std::time::Duration;

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq)]
pub struct Messages {
    #[serde(default)]
    pub publish: i64,
    #[serde(default)]
    pub deliver_get: i64,
    #[serde(default)]
    pub ack: i64,
}

impl Messages {
    pub fn minus(self, before: Messages) -> Messages {
        Messages {
            publish: self.publish - before.publish,
            deliver_get: self.deliver_get - before.deliver_get,
            ack: self.ack - before.ack,
        }
    }

    pub fn add(&mut self, other: Messages) {
        self.publish += other.publish;
        self.deliver_get += other.deliver_get;
        self.ack += other.ack;
    }
}

#[derive(Deserialize)]
struct Vhost {
    #[serde(default)]
    message_stats: Messages,
}

#[derive(Deserialize)]
struct Channel {
    name: String,
    #[serde(default)]
    connection_details: Option<Peer>,
    #[serde(default)]
    message_stats: Messages,
}

#[derive(Deserialize)]
struct Peer {
    #[serde(default)]
    peer_port: Option<u16>,
}

#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub vhost: Messages,
    /// By channel name: the client port of its connection and its counters.
    pub channels: HashMap<String, (u16, Messages)>,
}

pub struct Reader {
    http: reqwest::Client,
    base: String,
    vhost: String,
}

impl Reader {
    pub fn new(management_url: &str, vhost: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build()?;
        Ok(Self { http, base: management_url.trim_end_matches('/').to_owned(), vhost: encode(vhost) })
    }

    async fn get<T: for<'de> Deserialize<'de>>(&self, path: &str) -> anyhow::Result<T> {
        let url = format!("{}/api/{path}", self.base);
        let response = self
            .http
            .get(&url)
            .basic_auth("guest", Some("guest"))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("GET {url}"))?;
        response.json().await.with_context(|| format!("reading {url}"))
    }

    pub async fn read(&self) -> anyhow::Result<Snapshot> {
        let vhost: Vhost = self.get(&format!("vhosts/{}", self.vhost)).await?;
        let channels: Vec<Channel> = self.get(&format!("vhosts/{}/channels", self.vhost)).await?;
        let channels = channels
            .into_iter()
            .map(|c| {
                let port = c.connection_details.and_then(|p| p.peer_port).unwrap_or(0);
                (c.name, (port, c.message_stats))
            })
            .collect();
        Ok(Snapshot { vhost: vhost.message_stats, channels })
    }
}

/// A vhost name as one path segment of the management API ("/" is `%2F`).
fn encode(vhost: &str) -> String {
    vhost
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Per channel, what it did between the two readings (a channel opened meanwhile from zero).
pub fn channel_deltas(before: &Snapshot, after: &Snapshot) -> Vec<(u16, Messages)> {
    after
        .channels
        .iter()
        .map(|(name, (port, now))| {
            let then = before.channels.get(name).map(|(_, m)| *m).unwrap_or_default();
            (*port, now.minus(then))
        })
        .collect()
}

/// The local TCP ports of `pid`'s sockets: socket inodes from `/proc/<pid>/fd`, their ports
/// from `/proc/net/tcp` and `tcp6`.
pub fn local_ports(pid: u32) -> HashMap<u16, u32> {
    let mut inodes = std::collections::HashSet::new();
    if let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for entry in entries.flatten() {
            if let Ok(target) = std::fs::read_link(entry.path()) {
                let target = target.to_string_lossy();
                if let Some(inode) = target.strip_prefix("socket:[").and_then(|t| t.strip_suffix(']')) {
                    inodes.insert(inode.to_owned());
                }
            }
        }
    }
    let mut ports = HashMap::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for (port, inode) in text.lines().skip(1).filter_map(parse_tcp_line) {
            if inodes.contains(inode) {
                ports.insert(port, pid);
            }
        }
    }
    ports
}

/// `sl local_address rem_address st ... inode`: the local port (hex after the colon) and inode.
fn parse_tcp_line(line: &str) -> Option<(u16, &str)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let port = fields.get(1)?.rsplit_once(':')?.1;
    Some((u16::from_str_radix(port, 16).ok()?, fields.get(9)?))
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a test should stop at the first unexpected value")]
mod tests {
    use super::*;

    #[test]
    fn a_proc_net_tcp_line_gives_the_local_port_and_the_inode() {
        let line = "   3: 0100007F:D431 0100007F:1628 01 00000000:00000000 00:00000000 00000000     0        0 123456 1 0000000000000000 20 4 30 10 -1";
        assert_eq!(parse_tcp_line(line), Some((0xD431, "123456")));
        assert_eq!(parse_tcp_line("garbage"), None);
    }

    #[test]
    fn this_process_owns_the_port_of_a_socket_it_opened() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let ports = local_ports(std::process::id());
        assert_eq!(ports.get(&port), Some(&std::process::id()));
    }

    #[test]
    fn deltas_count_new_channels_from_zero() {
        let mut before = Snapshot::default();
        let m = |p, d, a| Messages { publish: p, deliver_get: d, ack: a };
        before.channels.insert("a".into(), (1000, m(5, 5, 5)));
        let mut after = before.clone();
        after.channels.insert("a".into(), (1000, m(15, 25, 35)));
        after.channels.insert("b".into(), (1001, m(1, 2, 3)));
        let mut deltas = channel_deltas(&before, &after);
        deltas.sort_by_key(|(port, _)| *port);
        assert_eq!(deltas, [(1000, m(10, 20, 30)), (1001, m(1, 2, 3))]);
        assert_eq!(encode("/"), "%2F");
    }
}
