//! The SSRF guard: a webhook URL is the one place where an outsider picks the hosts we connect
//! to, so private, loopback, link-local and other special addresses are refused unless the
//! configuration names them. Every address a host resolves to is checked, and the caller then
//! connects only to those checked addresses (no second lookup an attacker could rebind).

use ipnet::{IpNet, Ipv6Net};
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
    Network(IpNet),
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
        let judged = canonical(ip);
        let allowed =
            self.allowed.iter().any(|a| matches!(a, Allowed::Network(net) if net.contains(&judged)));
        if allowed { Ok(()) } else { Err(GuardError::Forbidden { host: host.to_owned(), address: ip, kind }) }
    }
}

fn parse_entry(entry: &str) -> Result<Allowed, String> {
    let unbracketed = entry.trim_start_matches('[').replacen(']', "", 1);
    if let Ok(net) = unbracketed.parse::<IpNet>() {
        return Ok(Allowed::Network(net));
    }
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Ok(Allowed::Network(IpNet::from(ip)));
    }
    let host_name = entry.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if host_name && !entry.contains('/') {
        Ok(Allowed::Host(entry.to_ascii_lowercase()))
    } else {
        Err(format!("`{entry}`"))
    }
}

/// `::ffff:10.0.0.1` (IPv4-mapped) and `::10.0.0.1` (IPv4-compatible) are the IPv4 address to
/// the network stack, so they are judged, and matched against the allow-list, as one.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        // `::1` is loopback, not the IPv4-compatible `0.0.0.1`.
        IpAddr::V6(v6) if SPECIAL_V6.iter().any(|(net, _)| net.contains(&v6)) => ip,
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some((Embedding::Mapped | Embedding::Compatible, [v4, _])) => IpAddr::V4(v4),
            _ => ip,
        },
        v4 => v4,
    }
}

/// The IPv6 forms that carry an IPv4 address: a packet to one of them ends up at, or is
/// steered by, that IPv4 address, so `2002:a00:1::` is as private as `10.0.0.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Embedding {
    /// `::ffff:0:0/96`
    Mapped,
    /// `::/96` (deprecated, but still routed by some stacks)
    Compatible,
    /// `64:ff9b::/96`, the well-known NAT64 prefix (RFC 6052)
    Nat64,
    /// `2002::/16`: the IPv4 address of the 6to4 router in bits 16..48
    SixToFour,
    /// `2001::/32`: the Teredo server in bits 32..64, the client's (inverted) in bits 96..128
    Teredo,
}

const MAPPED: Ipv6Net = v6net([0, 0, 0, 0, 0, 0xffff, 0, 0], 96);
const COMPATIBLE: Ipv6Net = v6net([0; 8], 96);
const NAT64: Ipv6Net = v6net([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);
const SIX_TO_FOUR: Ipv6Net = v6net([0x2002, 0, 0, 0, 0, 0, 0, 0], 16);
const TEREDO: Ipv6Net = v6net([0x2001, 0, 0, 0, 0, 0, 0, 0], 32);

/// IPv6 ranges that are never an ordinary public host, checked before any embedded address
/// (`::1` is loopback, not the IPv4-compatible `0.0.0.1`).
const SPECIAL_V6: &[(Ipv6Net, &str)] = &[
    (v6net([0; 8], 128), "unspecified"),
    (v6net([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback"),
    (v6net([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast"),
    (v6net([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), "link-local"),
    (v6net([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), "site-local"),
    (v6net([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), "private (unique local)"),
    (v6net([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), "documentation"),
    (v6net([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), "documentation"),
    (v6net([0x0100, 0, 0, 0, 0, 0, 0, 0], 64), "discard-only"),
    (v6net([0x2001, 0x2, 0, 0, 0, 0, 0, 0], 48), "benchmarking"),
    (v6net([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28), "ORCHID"),
    (v6net([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28), "ORCHID"),
    // Local-use NAT64 (RFC 8215): where the IPv4 address sits depends on the operator's prefix
    // length, so the embedded address cannot be judged; it is a site's own translator anyway.
    (v6net([0x64, 0xff9b, 0x1, 0, 0, 0, 0, 0], 48), "NAT64 (local-use)"),
    (v6net([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16), "segment-routing"),
];

const fn v6net(s: [u16; 8], prefix: u8) -> Ipv6Net {
    // Evaluated at compile time: a bad prefix fails the build, never a request.
    Ipv6Net::new_assert(Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]), prefix)
}

/// The form and the IPv4 addresses embedded in `ip` (twice the same but for Teredo, which
/// carries two), or `None` for an address that carries none.
fn embedded_v4(ip: Ipv6Addr) -> Option<(Embedding, [Ipv4Addr; 2])> {
    let bits = u128::from(ip);
    let low = Ipv4Addr::from(bits as u32);
    let form = if MAPPED.contains(&ip) {
        Embedding::Mapped
    } else if COMPATIBLE.contains(&ip) {
        Embedding::Compatible
    } else if NAT64.contains(&ip) {
        Embedding::Nat64
    } else if SIX_TO_FOUR.contains(&ip) {
        let router = Ipv4Addr::from((bits >> 80) as u32);
        return Some((Embedding::SixToFour, [router, router]));
    } else if TEREDO.contains(&ip) {
        let server = Ipv4Addr::from((bits >> 64) as u32);
        let client = Ipv4Addr::from(!(bits as u32));
        return Some((Embedding::Teredo, [server, client]));
    } else {
        return None;
    };
    Some((form, [low, low]))
}

/// What kind of non-public address `ip` is, or `None` for an ordinary public address. An IPv6
/// address that embeds an IPv4 one is what its IPv4 address is.
pub fn special(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => {
            if let Some((_, kind)) = SPECIAL_V6.iter().find(|(net, _)| net.contains(&v6)) {
                return Some(kind);
            }
            let (_, embedded) = embedded_v4(v6)?;
            embedded.into_iter().find_map(special_v4)
        }
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
        // The 6to4 relay anycast prefix (deprecated): a relay, never the receiver.
        (192, 88, 99) => "6to4 relay",
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
            ("64:ff9b:1::1", "NAT64 (local-use)"),
        ] {
            assert_eq!(special(ip(address)), Some(kind), "{address}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "172.32.0.1"] {
            assert_eq!(special(ip(public)), None, "{public}");
        }
    }

    /// Every IPv6 form that carries an IPv4 address is judged as that address: the
    /// IPv4-compatible `::/96` and Teredo `2001::/32` used to pass as public.
    #[test]
    fn security_webhooks_ipv6_forms_embedding_a_private_ipv4_are_refused_as_that_address() {
        for (address, kind) in [
            ("::a00:1", "private"),                                 // IPv4-compatible 10.0.0.1
            ("::7f00:1", "loopback"),                               // IPv4-compatible 127.0.0.1
            ("::a9fe:a9fe", "link-local"),                          // IPv4-compatible metadata
            ("::ffff:127.0.0.1", "loopback"),                       // IPv4-mapped
            ("64:ff9b::a9fe:a9fe", "link-local"),                   // NAT64 of 169.254.169.254
            ("64:ff9b::c0a8:101", "private"),                       // NAT64 of 192.168.1.1
            ("2002:a00:1::1", "private"),                           // 6to4 via 10.0.0.1
            ("2002:7f00:1::", "loopback"),                          // 6to4 via 127.0.0.1
            ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "private"),    // Teredo client 10.0.0.1
            ("2001:0:a9fe:a9fe:8000:63bf:a247:27dd", "link-local"), // Teredo server 169.254.169.254
            ("2001::", "unspecified"),                              // Teredo with 0.0.0.0 server
        ] {
            assert_eq!(special(ip(address)), Some(kind), "{address}");
        }
        for public in [
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:5db8:d822::1",
            "2001:0:4136:e378:8000:63bf:a247:27dd",
        ] {
            assert_eq!(special(ip(public)), None, "{public}");
        }
    }

    #[tokio::test]
    async fn security_webhooks_urls_with_embedded_private_addresses_are_refused_before_any_connection() {
        let loopback_allowed = Guard::new("127.0.0.0/8,::1", false).unwrap_or_default();
        for url in [
            "http://[::a00:1]/hook",
            "http://[::7f00:1]:9/hook",
            "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/hook",
            "http://[2002:a9fe:a9fe::1]/latest",
            "http://[64:ff9b::a9fe:a9fe]/latest",
            // Allowing IPv4 loopback does not allow reaching it through a 6to4 or NAT64 relay.
            "http://[2002:7f00:1::1]:9/hook",
            "http://[64:ff9b::7f00:1]:9/hook",
        ] {
            let parsed = reqwest::Url::parse(url);
            assert!(parsed.is_ok(), "{url}");
            let Ok(parsed) = parsed else { return };
            let strict = Guard::default().resolve(&parsed).await;
            assert!(matches!(strict, Err(GuardError::Forbidden { .. })), "{url}: {strict:?}");
            if !url.contains("::7f00:1]") {
                let verdict = loopback_allowed.resolve(&parsed).await;
                assert!(matches!(verdict, Err(GuardError::Forbidden { .. })), "{url}: {verdict:?}");
            }
        }
        // The IPv4-compatible form of an allowed IPv4 address is that address.
        let url = reqwest::Url::parse("http://[::7f00:1]:9/hook").ok();
        let Some(url) = url else { return };
        assert!(loopback_allowed.resolve(&url).await.is_ok());
    }

    #[test]
    fn the_allow_list_takes_networks_addresses_and_host_names() {
        let guard = Guard::new("127.0.0.0/8, ::1, 10.1.0.0/16, hooks.internal", false);
        assert!(guard.is_ok());
        let guard = guard.unwrap_or_default();
        assert_eq!(guard.check("h", ip("127.0.0.2")), Ok(()));
        assert_eq!(guard.check("h", ip("::1")), Ok(()));
        assert_eq!(guard.check("h", ip("10.1.200.3")), Ok(()));
        assert_eq!(guard.check("h", ip("::ffff:127.0.0.1")), Ok(()));
        assert!(guard.check("h", ip("2002:7f00:1::")).is_err());
        assert!(Guard::new("[::1]/128, fd00::/8", false).is_ok());
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
