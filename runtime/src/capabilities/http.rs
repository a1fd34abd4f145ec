//! Outbound HTTP: the per-instance allow-list ([`EgressPolicy`]) and the `wasi:http`
//! hook that checks every request against it before a connection is opened.
//!
//! Deny by default. The host never follows redirects for a guest (wasi-http hands the
//! 3xx response back), so a redirect is a new request, checked again.

use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

use super::log::{LogLevel, LogRecord, LogSink, now_ms};

/// A refused allow-list rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid allowed host `{rule}`: {reason}")]
pub struct EgressRuleError {
    pub rule: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    /// `*.example.com`: any subdomain of `example.com` (not `example.com` itself).
    Subdomains(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    /// `None`: http or https.
    scheme: Option<String>,
    host: HostPattern,
    /// `None`: any port. Omitted in the rule: the scheme's default port.
    port: PortPattern,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortPattern {
    Any,
    Default,
    Exact(u16),
}

/// The hosts an instance's guests may call over HTTP.
///
/// Rules are `scheme://host[:port]`: the scheme is `http`, `https` or `*`; the host is
/// a name, an IP address (IPv6 in brackets), `*`, or `*.domain` for any subdomain;
/// the port is a number or `*`, and when omitted is the scheme's default port.
///
/// ```
/// use sluice_runtime::EgressPolicy;
///
/// let policy = EgressPolicy::parse(["https://api.github.com", "http://127.0.0.1:8080", "https://*.zendesk.com"])?;
/// assert!(policy.allows("https", "api.github.com", None));
/// assert!(policy.allows("https", "acme.zendesk.com", Some(443)));
/// assert!(!policy.allows("http", "api.github.com", None));
/// assert!(!policy.allows("http", "127.0.0.1", Some(9000)));
/// assert!(!sluice_runtime::EgressPolicy::deny_all().allows("https", "example.com", None));
/// # Ok::<(), sluice_runtime::EgressRuleError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    rules: Vec<Rule>,
}

impl EgressPolicy {
    /// A policy that refuses every request.
    pub fn deny_all() -> Self {
        Self::default()
    }

    /// Parses a list of rules; the first invalid one is reported.
    pub fn parse<I, S>(rules: I) -> Result<Self, EgressRuleError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let rules = rules
            .into_iter()
            .map(|rule| parse_rule(rule.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EgressPolicy { rules })
    }

    /// Whether a request to `scheme://host[:port]` is allowed.
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let scheme = scheme.to_ascii_lowercase();
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return false,
        };
        let port = port.unwrap_or(default_port);
        self.rules.iter().any(|rule| {
            rule.scheme
                .as_ref()
                .is_none_or(|allowed| *allowed == scheme)
                && match &rule.host {
                    HostPattern::Any => true,
                    HostPattern::Exact(name) => *name == host,
                    // `domain` keeps its leading dot, so `evilexample.com` cannot match.
                    HostPattern::Subdomains(domain) => host
                        .strip_suffix(domain.as_str())
                        .is_some_and(|prefix| !prefix.is_empty()),
                }
                && match rule.port {
                    PortPattern::Any => true,
                    PortPattern::Default => port == default_port,
                    PortPattern::Exact(allowed) => port == allowed,
                }
        })
    }
}

fn parse_rule(rule: &str) -> Result<Rule, EgressRuleError> {
    let fail = |reason: &str| EgressRuleError {
        rule: rule.to_string(),
        reason: reason.to_string(),
    };
    let (scheme, rest) = rule
        .split_once("://")
        .ok_or_else(|| fail("expected `scheme://host[:port]`, e.g. `https://api.example.com`"))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Some("http".to_string()),
        "https" => Some("https".to_string()),
        "*" => None,
        _ => return Err(fail("the scheme must be `http`, `https` or `*`")),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err(fail("a rule names a host, not a path"));
    }
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        let (address, after) = inner
            .split_once(']')
            .ok_or_else(|| fail("unclosed `[` in an IPv6 address"))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| fail("expected `:port` after `]`"))?,
            ),
        };
        (address.to_string(), port)
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (rest.to_string(), None),
        }
    };
    let port = match port {
        None => PortPattern::Default,
        Some("*") => PortPattern::Any,
        Some(port) => PortPattern::Exact(
            port.parse()
                .map_err(|_| fail("the port must be a number or `*`"))?,
        ),
    };
    let host = host.to_ascii_lowercase();
    let host = if host == "*" {
        HostPattern::Any
    } else if let Some(domain) = host.strip_prefix("*.") {
        if domain.is_empty() || domain.contains('*') {
            return Err(fail("a wildcard host is `*` or `*.domain`"));
        }
        HostPattern::Subdomains(format!(".{domain}"))
    } else if host.is_empty() || host.contains('*') {
        return Err(fail("a wildcard host is `*` or `*.domain`"));
    } else {
        HostPattern::Exact(host)
    };
    Ok(Rule { scheme, host, port })
}

/// The `wasi:http` hooks of one execution: checks the allow-list, and tells the
/// execution's log why a request was refused.
pub(crate) struct EgressHooks {
    pub(crate) policy: Arc<EgressPolicy>,
    pub(crate) log: Arc<dyn LogSink>,
    pub(crate) execution_id: String,
    pub(crate) step: Option<String>,
}

type SendFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendFuture {
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("https");
        let host = uri.host().unwrap_or("");
        if !self.policy.allows(scheme, host, uri.port_u16()) {
            let target = match uri.port_u16() {
                Some(port) => format!("{scheme}://{host}:{port}"),
                None => format!("{scheme}://{host}"),
            };
            self.log.write(LogRecord {
                execution_id: self.execution_id.clone(),
                step: self.step.clone(),
                level: LogLevel::Warn,
                message: format!("outbound HTTP request to {target} denied: the host is not on the instance's allow-list"),
                fields: None,
                timestamp_ms: now_ms(),
            });
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }

    // An outgoing body buffers at most (chunks + 1) x chunk size until it is sent;
    // `http_memory` charges that much per body, so both stay small (wasi-http's
    // defaults hold 2 MiB per body).
    fn p2_outgoing_body_buffer_chunks(&mut self) -> usize {
        super::http_memory::OUTGOING_BODY_BUFFER_CHUNKS
    }

    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        super::http_memory::OUTGOING_BODY_CHUNK_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_match() {
        let policy = EgressPolicy::parse([
            "*://*.example.com:*",
            "http://[::1]:8080",
            "https://api.test/",
        ])
        .unwrap();
        assert!(policy.allows("http", "a.example.com", Some(1234)));
        assert!(policy.allows("https", "deep.a.example.com", None));
        assert!(!policy.allows("https", "example.com", None));
        assert!(!policy.allows("https", "evilexample.com", None));
        assert!(policy.allows("http", "[::1]", Some(8080)));
        assert!(policy.allows("https", "API.test", None));
        assert!(!policy.allows("https", "api.test", Some(8443)));
        assert!(!policy.allows("ftp", "api.test", None));
    }

    #[test]
    fn bad_rules_are_refused_with_a_reason() {
        for (rule, reason) in [
            ("api.example.com", "scheme://host"),
            ("ftp://x", "scheme must be"),
            ("https://x/path", "not a path"),
            ("https://x:port", "port must be"),
            ("https://a*.b", "wildcard"),
        ] {
            let err = EgressPolicy::parse([rule]).unwrap_err();
            assert!(err.to_string().contains(reason), "{rule}: {err}");
        }
    }
}
