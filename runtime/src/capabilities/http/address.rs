//! The operator's side of egress ([`NetworkPolicy`]): which resolved addresses a
//! guest may connect to, how names are resolved ([`Resolver`]), and the caps and
//! timeouts of outbound connections ([`OutboundLimits`]), with the per-tenant
//! in-flight counts they are enforced against.
//!
//! Tenants choose names (the allow-list); only the operator chooses addresses. Every
//! address a name resolves to is checked against the special-purpose ranges below
//! (loopback, private, link-local with the cloud metadata address, CGNAT, multicast,
//! documentation, ...), and those are refused unless the operator opened them with
//! `--egress-allow-cidr`.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// IPv4 ranges no guest may reach unless the operator opens them: everything in the
/// IANA special-purpose registry that is not globally reachable, plus multicast and
/// the reserved class E (which includes the broadcast address).
const DENIED_V4: &[Ipv4Net] = &[
    Ipv4Net::new_assert(Ipv4Addr::new(0, 0, 0, 0), 8), // "this network", 0.0.0.0
    Ipv4Net::new_assert(Ipv4Addr::new(10, 0, 0, 0), 8), // RFC 1918
    Ipv4Net::new_assert(Ipv4Addr::new(100, 64, 0, 0), 10), // CGNAT (RFC 6598)
    Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8), // loopback
    Ipv4Net::new_assert(Ipv4Addr::new(169, 254, 0, 0), 16), // link-local, 169.254.169.254
    Ipv4Net::new_assert(Ipv4Addr::new(172, 16, 0, 0), 12), // RFC 1918
    Ipv4Net::new_assert(Ipv4Addr::new(192, 0, 0, 0), 24), // IETF protocol assignments
    Ipv4Net::new_assert(Ipv4Addr::new(192, 0, 2, 0), 24), // TEST-NET-1
    Ipv4Net::new_assert(Ipv4Addr::new(192, 88, 99, 0), 24), // 6to4 relay anycast
    Ipv4Net::new_assert(Ipv4Addr::new(192, 168, 0, 0), 16), // RFC 1918
    Ipv4Net::new_assert(Ipv4Addr::new(198, 18, 0, 0), 15), // benchmarking
    Ipv4Net::new_assert(Ipv4Addr::new(198, 51, 100, 0), 24), // TEST-NET-2
    Ipv4Net::new_assert(Ipv4Addr::new(203, 0, 113, 0), 24), // TEST-NET-3
    Ipv4Net::new_assert(Ipv4Addr::new(224, 0, 0, 0), 4), // multicast
    Ipv4Net::new_assert(Ipv4Addr::new(240, 0, 0, 0), 4), // reserved, 255.255.255.255
];

/// IPv6 ranges refused outright. The ranges that embed an IPv4 address (mapped,
/// compatible, NAT64, 6to4) are not here: [`embedded_v4`] extracts the address and
/// it is checked as IPv4.
const DENIED_V6: &[Ipv6Net] = &[
    Ipv6Net::new_assert(Ipv6Addr::UNSPECIFIED, 128),
    Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128),
    Ipv6Net::new_assert(Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48), // local NAT64
    Ipv6Net::new_assert(Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64),     // discard-only
    Ipv6Net::new_assert(Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23), // IETF (Teredo, benchmarking, ORCHID)
    Ipv6Net::new_assert(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    Ipv6Net::new_assert(Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation
    Ipv6Net::new_assert(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),  // unique local
    Ipv6Net::new_assert(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10), // link-local
    Ipv6Net::new_assert(Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10), // site-local
    Ipv6Net::new_assert(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),  // multicast
];

/// The IPv4 address an IPv6 address stands for, when it embeds one: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, deprecated), NAT64
/// (`64:ff9b::a.b.c.d`) and 6to4 (`2002:aabb:ccdd::/48`). A guest must not reach
/// 127.0.0.1 by spelling it as IPv6.
fn embedded_v4(address: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = address.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low),
        // `::` and `::1` are in this /96 too; they are refused as IPv6 first.
        [0, 0, 0, 0, 0, 0, _, _] => Some(low),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x2002, high, low16, ..] => Some(Ipv4Addr::new(
            (high >> 8) as u8,
            high as u8,
            (low16 >> 8) as u8,
            low16 as u8,
        )),
        _ => None,
    }
}

/// Whether `address` is in a private or special-purpose range (refused unless the
/// operator opens it).
pub fn is_special_purpose(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => DENIED_V4.iter().any(|net| net.contains(&v4)),
        IpAddr::V6(v6) => {
            DENIED_V6.iter().any(|net| net.contains(&v6))
                || embedded_v4(v6).is_some_and(|v4| is_special_purpose(IpAddr::V4(v4)))
        }
    }
}

/// Looks up the addresses of a host name. The host resolves names itself, checks
/// every address, and connects to a checked one: nothing resolves the name a second
/// time (no DNS rebinding between the check and the connection).
pub trait Resolver: Send + Sync {
    /// The addresses of `host` (a name or an address literal), for a connection to `port`.
    fn resolve(&self, host: &str, port: u16) -> ResolveFuture;
}

/// What [`Resolver::resolve`] returns.
pub type ResolveFuture = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// The operating system's resolver (`getaddrinfo`, through tokio).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> ResolveFuture {
        let host = host.to_string();
        Box::pin(async move {
            let addresses = tokio::net::lookup_host((host.as_str(), port)).await?;
            Ok(addresses.map(|address| address.ip()).collect())
        })
    }
}

/// A fixed table of names, for tests: a name maps to the addresses chosen for it,
/// and any other name does not exist.
#[derive(Debug, Default, Clone)]
pub struct StaticResolver {
    names: HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    /// A resolver that knows no name.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resolves `name` (lower-case) to `addresses`.
    pub fn with(mut self, name: impl Into<String>, addresses: Vec<IpAddr>) -> Self {
        self.names.insert(name.into(), addresses);
        self
    }
}

impl Resolver for StaticResolver {
    fn resolve(&self, host: &str, _port: u16) -> ResolveFuture {
        let found = self.names.get(&host.to_ascii_lowercase()).cloned();
        Box::pin(async move {
            found.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such host"))
        })
    }
}

/// Caps and timeouts of outbound HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundLimits {
    /// Requests one execution may have in flight (from send until its response body
    /// is done or dropped); past it a request fails at once with
    /// `connection-limit-reached`.
    pub per_execution: usize,
    /// The same, summed over all executions of one tenant.
    pub per_tenant: usize,
    /// Longest wait for name resolution plus the TCP and TLS handshakes; a guest's
    /// `connect-timeout` option can only shorten it.
    pub connect_timeout: Duration,
    /// Longest wait for the response head once the request is sent; a guest's
    /// `first-byte-timeout` option can only shorten it.
    pub first_byte_timeout: Duration,
    /// Longest wait between two frames of a response body; a guest's
    /// `between-bytes-timeout` option can only shorten it.
    pub between_bytes_timeout: Duration,
}

impl Default for OutboundLimits {
    fn default() -> Self {
        OutboundLimits {
            per_execution: 16,
            per_tenant: 64,
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(60),
            between_bytes_timeout: Duration::from_secs(60),
        }
    }
}

/// An operator's `--egress-allow-cidr` value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid CIDR `{text}`: expected an address range such as `10.0.0.0/8` or `::1/128`, or one address"
)]
pub struct CidrError {
    /// The text that is not a CIDR block.
    pub text: String,
}

/// The operator's network policy for every guest of one process: the private ranges
/// opened (none by default), the resolver, and the outbound caps with the in-flight
/// counts per tenant. Share one (`Arc`) between all executions, so that the
/// per-tenant cap sees them all; [`Capabilities::default`](crate::Capabilities) uses a
/// process-wide one.
pub struct NetworkPolicy {
    allowed: Vec<IpNet>,
    resolver: Arc<dyn Resolver>,
    limits: OutboundLimits,
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
}

impl std::fmt::Debug for NetworkPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkPolicy")
            .field("allowed", &self.allowed)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Default for NetworkPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl NetworkPolicy {
    /// Public addresses only, the system resolver, default limits.
    pub fn new() -> Self {
        NetworkPolicy {
            allowed: Vec::new(),
            resolver: Arc::new(SystemResolver),
            limits: OutboundLimits::default(),
            in_flight: Arc::default(),
        }
    }

    /// Opens a range (`10.1.0.0/16`, `127.0.0.1/32`, `::1/128`, or one address) that
    /// would otherwise be refused as private or special-purpose.
    pub fn allow_cidr(mut self, text: &str) -> Result<Self, CidrError> {
        self.allowed.push(parse_cidr(text)?);
        Ok(self)
    }

    /// Opens loopback (`127.0.0.0/8` and `::1`): for test harnesses whose fakes
    /// listen there.
    pub fn allow_loopback(mut self) -> Self {
        self.allowed.extend([
            IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(127, 0, 0, 0), 8)),
            IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128)),
        ]);
        self
    }

    /// The same policy, resolving names with `resolver` (tests use a [`StaticResolver`]).
    pub fn with_resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = resolver;
        self
    }

    /// The same policy, with these caps on outbound requests in flight.
    pub fn with_limits(mut self, limits: OutboundLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The caps on outbound requests in flight.
    pub fn limits(&self) -> OutboundLimits {
        self.limits
    }

    pub(crate) fn resolver(&self) -> &dyn Resolver {
        self.resolver.as_ref()
    }

    /// Whether a guest may connect to `address`: a public address, or one in a range
    /// the operator opened. An IPv4-mapped address (`::ffff:127.0.0.1`) counts as its
    /// IPv4 address (the socket reaches that address); the other embeddings (NAT64,
    /// 6to4, IPv4-compatible) reach other hosts, so opening an IPv4 range does not
    /// open them.
    pub fn permits(&self, address: IpAddr) -> bool {
        let opened = |address: IpAddr| self.allowed.iter().any(|net| net.contains(&address));
        !is_special_purpose(address) || opened(address) || opened(address.to_canonical())
    }

    /// Takes one in-flight slot of `tenant`, or `None` when the tenant is at its cap.
    pub(crate) fn acquire_tenant(&self, tenant: &str) -> Option<TenantSlot> {
        let mut counts = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(tenant.to_string()).or_insert(0);
        if *count >= self.limits.per_tenant {
            return None;
        }
        *count += 1;
        Some(TenantSlot {
            counts: Arc::clone(&self.in_flight),
            tenant: tenant.to_string(),
        })
    }

    /// Requests the tenant has in flight now.
    pub fn in_flight(&self, tenant: &str) -> usize {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tenant)
            .copied()
            .unwrap_or(0)
    }
}

/// One request's share of its tenant's cap; given back on drop.
pub(crate) struct TenantSlot {
    counts: Arc<Mutex<HashMap<String, usize>>>,
    tenant: String,
}

impl Drop for TenantSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.tenant) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.tenant);
            }
        }
    }
}

/// Parses an operator's CIDR (`10.0.0.0/8`) or single address (`127.0.0.1`).
pub fn parse_cidr(text: &str) -> Result<IpNet, CidrError> {
    let fail = || CidrError {
        text: text.chars().take(64).collect(),
    };
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<IpAddr>().map(IpNet::from).map_err(|_| fail())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn special_purpose_ranges_are_refused() {
        for text in [
            "127.0.0.1",
            "127.255.255.254",
            "0.0.0.0",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "198.18.0.1",
            "198.19.255.255",
            "192.0.2.1",
            "198.51.100.1",
            "203.0.113.1",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2001::1",
            "2001:db8::1",
            "fc00::1",
            "fd00::1",
            "fe80::1",
            "ff02::1",
        ] {
            assert!(is_special_purpose(ip(text)), "{text}");
            assert!(!NetworkPolicy::new().permits(ip(text)), "{text}");
        }
        for text in [
            "1.1.1.1",
            "8.8.8.8",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!is_special_purpose(ip(text)), "{text}");
            assert!(NetworkPolicy::new().permits(ip(text)), "{text}");
        }
    }

    #[test]
    fn the_operator_opens_ranges() {
        let policy = NetworkPolicy::new().allow_cidr("127.0.0.1/32").unwrap();
        assert!(policy.permits(ip("127.0.0.1")));
        assert!(policy.permits(ip("::ffff:127.0.0.1")));
        assert!(!policy.permits(ip("127.0.0.2")));
        assert!(!policy.permits(ip("::1")));
        assert!(!policy.permits(ip("::127.0.0.1")));
        assert!(!policy.permits(ip("64:ff9b::7f00:1")));
        assert!(!policy.permits(ip("169.254.169.254")));
        let policy = NetworkPolicy::new()
            .allow_cidr("10.1.2.3/16")
            .unwrap()
            .allow_cidr("::1")
            .unwrap();
        assert!(policy.permits(ip("10.1.200.1")));
        assert!(!policy.permits(ip("10.2.0.1")));
        assert!(policy.permits(ip("::1")));
        assert!(NetworkPolicy::new().allow_cidr("10.0.0.0/33").is_err());
        assert!(NetworkPolicy::new().allow_cidr("localhost").is_err());
    }

    #[test]
    fn tenant_slots_are_counted_and_given_back() {
        let policy = NetworkPolicy::new().with_limits(OutboundLimits {
            per_tenant: 2,
            ..OutboundLimits::default()
        });
        let a = policy.acquire_tenant("t").unwrap();
        let _b = policy.acquire_tenant("t").unwrap();
        assert!(policy.acquire_tenant("t").is_none());
        assert!(policy.acquire_tenant("other").is_some());
        drop(a);
        assert_eq!(policy.in_flight("t"), 1);
        assert!(policy.acquire_tenant("t").is_some());
    }
}
