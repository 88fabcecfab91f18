//! Who the client is, by address. Behind a load balancer every peer is the balancer, so the
//! client is in `X-Forwarded-For`; but anyone can send that header, so it is believed only when
//! the peer is one of the configured trusted proxies (`TRUSTED_PROXIES`). Rate limits, guest
//! idempotency scopes, the open-order limit and login backoff all key on this one address.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest, web};
use ipnet::IpNet;
use std::future::{Ready, ready};
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

/// An address block, `10.0.0.0/8` or `fd00::/8`; a bare address is a block of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(IpNet);

impl FromStr for Cidr {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        raw.parse::<IpNet>()
            .or_else(|_| raw.parse::<IpAddr>().map(|ip| IpNet::from(ip.to_canonical())))
            .map(Self)
            .map_err(|_| "not an IP address or a CIDR block".to_owned())
    }
}

impl Cidr {
    /// An IPv4-mapped IPv6 peer (`::ffff:10.0.0.1`, what a dual-stack socket reports) is the
    /// IPv4 address.
    pub fn contains(&self, address: IpAddr) -> bool {
        self.0.contains(&address.to_canonical())
    }
}

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Vec<Cidr>);

impl TrustedProxies {
    fn trust(&self, address: IpAddr) -> bool {
        self.0.iter().any(|cidr| cidr.contains(address))
    }

    /// The client: the peer, unless the peer is a trusted proxy; then the right-most
    /// `X-Forwarded-For` entry that is not itself a trusted proxy (entries further left were
    /// written by the client and prove nothing).
    pub fn client(&self, peer: Option<IpAddr>, forwarded_for: &[&str]) -> IpAddr {
        let mut client = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)).to_canonical();
        if !self.trust(client) {
            return client;
        }
        let hops = forwarded_for.iter().flat_map(|value| value.split(',')).map(str::trim).rev();
        for hop in hops {
            let Some(address) = parse_hop(hop) else {
                // Garbage where an address should be: believe nothing further left.
                return client;
            };
            client = address;
            if !self.trust(address) {
                return address;
            }
        }
        client
    }
}

/// `203.0.113.7`, `2001:db8::1`, `[2001:db8::1]:443` or `203.0.113.7:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

/// The client address of this request (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    /// Worked out once per request by `resolve`; a request that skipped it (none in the public
    /// scope) gets its peer address.
    pub fn of(req: &HttpRequest) -> Self {
        req.extensions()
            .get::<ClientAddress>()
            .copied()
            .unwrap_or_else(|| Self(TrustedProxies::default().client(req.peer_addr().map(|a| a.ip()), &[])))
    }
}

impl std::fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl FromRequest for ClientAddress {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self::of(req)))
    }
}

/// Middleware: stores the request's `ClientAddress` for every guard and handler after it.
pub async fn resolve(
    trusted: web::Data<TrustedProxies>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let forwarded: Vec<&str> =
        req.headers().get_all("x-forwarded-for").filter_map(|value| value.to_str().ok()).collect();
    let client = trusted.client(req.peer_addr().map(|a| a.ip()), &forwarded);
    req.extensions_mut().insert(ClientAddress(client));
    Ok(next.call(req).await?.map_into_boxed_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(raw: &str) -> IpAddr {
        raw.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies(list.iter().filter_map(|c| c.parse().ok()).collect())
    }

    #[test]
    fn blocks_contain_exactly_their_addresses() {
        let block: Cidr = "10.1.0.0/16".parse().unwrap_or(Cidr(IpNet::from(ip("0.0.0.0"))));
        assert!(block.contains(ip("10.1.255.3")));
        assert!(!block.contains(ip("10.2.0.1")));
        assert!(block.contains(ip("::ffff:10.1.0.9")), "IPv4-mapped IPv6 is the IPv4 address");
        let six: Result<Cidr, _> = "fd00::/8".parse();
        assert!(six.is_ok_and(|c| c.contains(ip("fd12::1")) && !c.contains(ip("fe80::1"))));
        assert!("0.0.0.0/0".parse::<Cidr>().is_ok_and(|c| c.contains(ip("8.8.8.8"))));
        assert!(
            "10.0.0.7"
                .parse::<Cidr>()
                .is_ok_and(|c| c.contains(ip("10.0.0.7")) && !c.contains(ip("10.0.0.8")))
        );
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let spoofed = ["1.2.3.4"];
        assert_eq!(trusted.client(Some(ip("203.0.113.9")), &spoofed), ip("203.0.113.9"), "untrusted peer");
        assert_eq!(
            proxies(&[]).client(Some(ip("10.0.0.1")), &spoofed),
            ip("10.0.0.1"),
            "no proxies configured"
        );
        assert_eq!(trusted.client(Some(ip("10.0.0.1")), &["198.51.100.7"]), ip("198.51.100.7"));
        // A client's own X-Forwarded-For, appended to by the proxy: the right-most untrusted wins.
        assert_eq!(
            trusted.client(Some(ip("10.0.0.1")), &["1.2.3.4, 198.51.100.7", "10.0.0.2"]),
            ip("198.51.100.7")
        );
        assert_eq!(trusted.client(Some(ip("10.0.0.1")), &["junk, 10.0.0.3"]), ip("10.0.0.3"));
        assert_eq!(trusted.client(Some(ip("10.0.0.1")), &[]), ip("10.0.0.1"));
        assert_eq!(trusted.client(Some(ip("10.0.0.1")), &["[2001:db8::1]:443"]), ip("2001:db8::1"));
    }
}
