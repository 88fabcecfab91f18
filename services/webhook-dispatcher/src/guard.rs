//! The SSRF guard: a webhook URL is the one place where an outsider picks the hosts we connect
//! to, so private, loopback, link-local and other special addresses are refused unless the
//! configuration names them. Every address a host resolves to is checked, and the caller then
//! connects only to those checked addresses (no second lookup an attacker could rebind).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("only https URLs are allowed")]
    NotHttps,
    #[error("the URL has no host")]
    NoHost,
    #[error("`{host}` does not resolve: {reason}")]
    Unresolvable { host: String, reason: String },
    #[error("`{host}` resolves to {address}, a {kind} address, which is not allowed")]
    Forbidden { host: String, address: IpAddr, kind: &'static str },
}

/// One allow-list entry: a network (`10.1.0.0/16`, `::1`) or an exact host name.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    Network { base: IpAddr, prefix: u8 },
    Host(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Guard {
    allowed: Vec<Allowed>,
    https_only: bool,
}

impl Guard {
    /// `allowed` is comma-separated CIDRs, addresses or host names; `Err` names the bad entry.
    pub fn new(allowed: &str, https_only: bool) -> Result<Self, String> {
        let allowed = allowed
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(parse_entry)
            .collect::<Result<_, _>>()?;
        Ok(Self { allowed, https_only })
    }

    /// Resolves the URL's host and checks every address; returns the host and the addresses
    /// the request may use (with the URL's port).
    pub async fn resolve(&self, url: &reqwest::Url) -> Result<(String, Vec<SocketAddr>), GuardError> {
        if self.https_only && url.scheme() != "https" {
            return Err(GuardError::NotHttps);
        }
        let host = url.host_str().ok_or(GuardError::NoHost)?;
        let port = url.port_or_known_default().unwrap_or(443);
        // `[::1]` in a URL is `::1` to the resolver.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addresses: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|error| GuardError::Unresolvable {
                    host: host.to_owned(),
                    reason: error.to_string(),
                })?
                .collect(),
        };
        if addresses.is_empty() {
            return Err(GuardError::Unresolvable { host: host.to_owned(), reason: "no addresses".into() });
        }
        let named =
            self.allowed.iter().any(|a| matches!(a, Allowed::Host(h) if h.eq_ignore_ascii_case(bare)));
        if !named {
            for address in &addresses {
                self.check(host, address.ip())?;
            }
        }
        Ok((bare.to_owned(), addresses))
    }

    fn check(&self, host: &str, ip: IpAddr) -> Result<(), GuardError> {
        let Some(kind) = special(ip) else { return Ok(()) };
        let allowed = self
            .allowed
            .iter()
            .any(|a| matches!(a, Allowed::Network { base, prefix } if contains(*base, *prefix, ip)));
        if allowed { Ok(()) } else { Err(GuardError::Forbidden { host: host.to_owned(), address: ip, kind }) }
    }
}

fn parse_entry(entry: &str) -> Result<Allowed, String> {
    let (address, prefix) = match entry.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (entry, None),
    };
    let Ok(base) = address.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() else {
        let valid =
            prefix.is_none() && entry.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        return if valid { Ok(Allowed::Host(entry.to_ascii_lowercase())) } else { Err(format!("`{entry}`")) };
    };
    let max = if base.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("`{entry}`"))?,
    };
    Ok(Allowed::Network { base, prefix })
}

fn contains(base: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (base, canonical(ip)) {
        (IpAddr::V4(base), IpAddr::V4(ip)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(base) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(base), IpAddr::V6(ip)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(base) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

/// `::ffff:10.0.0.1` is `10.0.0.1` to the network stack, so it is judged as one.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// What kind of non-public address `ip` is, or `None` for an ordinary public address.
pub fn special(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_private() => "private",
        _ if ip.is_link_local() => "link-local",
        _ if ip.is_unspecified() || a == 0 => "unspecified",
        _ if ip.is_broadcast() || ip.is_multicast() || a >= 240 => "broadcast, multicast or reserved",
        (100, 64..=127, _) => "shared (carrier-grade NAT)",
        (192, 0, 0) | (198, 18..=19, _) => "special-purpose",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        _ => return None,
    })
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    Some(match first {
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_multicast() => "multicast",
        0xfe80..=0xfebf => "link-local",
        0xfec0..=0xfeff => "site-local",
        0xfc00..=0xfdff => "private (unique local)",
        0x2001 if ip.segments()[1] == 0xdb8 => "documentation",
        // 6to4 and NAT64 carry an IPv4 address that may well be private.
        0x2002 => "6to4",
        0x0064 if ip.segments()[1] == 0xff9b => "NAT64",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    // Classification only: nothing here connects anywhere.
    #[test]
    fn private_loopback_link_local_and_metadata_addresses_are_special() {
        for (address, kind) in [
            ("10.0.0.1", "private"),
            ("172.16.5.4", "private"),
            ("192.168.1.1", "private"),
            ("127.0.0.1", "loopback"),
            ("169.254.169.254", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("::1", "loopback"),
            ("fd00::1", "private (unique local)"),
            ("fe80::1", "link-local"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:169.254.169.254", "link-local"),
        ] {
            assert_eq!(special(ip(address)), Some(kind), "{address}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "172.32.0.1"] {
            assert_eq!(special(ip(public)), None, "{public}");
        }
    }

    #[test]
    fn the_allow_list_takes_networks_addresses_and_host_names() {
        let guard = Guard::new("127.0.0.0/8, ::1, 10.1.0.0/16, hooks.internal", false);
        assert!(guard.is_ok());
        let guard = guard.unwrap_or_default();
        assert_eq!(guard.check("h", ip("127.0.0.2")), Ok(()));
        assert_eq!(guard.check("h", ip("::1")), Ok(()));
        assert_eq!(guard.check("h", ip("10.1.200.3")), Ok(()));
        assert!(guard.check("h", ip("10.2.0.1")).is_err());
        assert!(guard.check("h", ip("169.254.169.254")).is_err());
        assert!(Guard::new("10.0.0.0/33", false).is_err());
        assert!(Guard::new("not a host!", false).is_err());
    }

    #[tokio::test]
    async fn literal_addresses_are_checked_without_any_lookup_or_connection() {
        let strict = Guard::default();
        for url in
            ["http://10.0.0.1/x", "http://169.254.169.254/latest", "http://192.168.1.1/", "http://[fd00::1]/"]
        {
            let parsed = reqwest::Url::parse(url);
            assert!(parsed.is_ok());
            let Ok(parsed) = parsed else { return };
            assert!(matches!(strict.resolve(&parsed).await, Err(GuardError::Forbidden { .. })), "{url}");
        }
        let url = reqwest::Url::parse("http://127.0.0.1:9/x").ok();
        let Some(url) = url else { return };
        assert!(matches!(strict.resolve(&url).await, Err(GuardError::Forbidden { kind: "loopback", .. })));
        let loopback = Guard::new("127.0.0.0/8", false).unwrap_or_default();
        assert_eq!(
            loopback.resolve(&url).await.map(|(_, a)| a),
            Ok(vec!["127.0.0.1:9".parse().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)))])
        );
        let https_only = Guard::new("127.0.0.0/8", true).unwrap_or_default();
        assert_eq!(https_only.resolve(&url).await, Err(GuardError::NotHttps));
    }

    #[tokio::test]
    async fn every_resolved_address_of_a_name_is_checked() {
        // `localhost` resolves (from /etc/hosts) to loopback only; nothing is dialled.
        let url = reqwest::Url::parse("http://localhost:9/").ok();
        let Some(url) = url else { return };
        assert!(matches!(Guard::default().resolve(&url).await, Err(GuardError::Forbidden { .. })));
        let by_name = Guard::new("localhost", false).unwrap_or_default();
        assert!(by_name.resolve(&url).await.is_ok());
    }
}
