//! The tenant's allow-list of outbound hosts ([`EgressPolicy`]): parsing and strict
//! validation of its rules, and matching a request's scheme, host and port against it.
//!
//! Rules are written by tenants, so only canonical spellings are accepted: one host
//! has one spelling, and no rule can name an address through a numeric trick
//! (`2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1`). This check is by name only;
//! where a name may lead is decided later, per resolved address (`address.rs`).

/// Longest rule accepted, in bytes: a 253-byte host name plus scheme and port fit.
const MAX_RULE_BYTES: usize = 300;
/// Most rules in one allow-list.
pub const MAX_RULES: usize = 100;
/// How much of a refused rule an error quotes.
const QUOTED_RULE_CHARS: usize = 64;

/// A refused allow-list rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid allowed host `{rule}`: {reason}")]
pub struct EgressRuleError {
    /// The rule as quoted in the message: control characters escaped and long rules
    /// cut, so an error never echoes megabytes or terminal escapes back.
    pub rule: String,
    /// Why it is refused.
    pub reason: String,
}

impl EgressRuleError {
    fn new(rule: &str, reason: impl Into<String>) -> Self {
        EgressRuleError {
            rule: quote(rule),
            reason: reason.into(),
        }
    }
}

/// Escapes control characters and cuts `rule` to [`QUOTED_RULE_CHARS`] characters.
fn quote(rule: &str) -> String {
    let mut quoted: String = rule
        .chars()
        .take(QUOTED_RULE_CHARS)
        .flat_map(char::escape_default)
        .collect();
    if rule.chars().count() > QUOTED_RULE_CHARS {
        quoted.push('…');
    }
    quoted
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// A host name, a dotted-quad IPv4 address or a compressed IPv6 address (without
    /// brackets), in canonical form.
    Exact(String),
    /// `*.example.com`: any subdomain of `example.com` (not `example.com` itself).
    /// Kept with its leading dot.
    Subdomains(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    /// `None`: http or https.
    scheme: Option<String>,
    host: HostPattern,
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
/// a host name (RFC 1123 labels, ASCII or punycode, at most 253 bytes), an IPv4
/// address in dotted-quad form, an IPv6 address in brackets in compressed form, or
/// `*.domain` for any subdomain; the port is a number or `*`, and when omitted is the
/// scheme's default port. A bare `*` host is refused: a tenant names the services it
/// calls. Upper-case letters are lower-cased; any other non-canonical spelling is
/// refused.
///
/// Passing this check only lets a request be resolved: every address it resolves to
/// is checked again by the operator's [`NetworkPolicy`](super::NetworkPolicy), which
/// refuses private and special-purpose ranges whatever the rule says.
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
/// assert!(EgressPolicy::parse(["http://2130706433"]).is_err());
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
        let mut parsed = Vec::new();
        for rule in rules {
            let rule = rule.as_ref();
            if parsed.len() == MAX_RULES {
                return Err(EgressRuleError::new(
                    rule,
                    format!("an allow-list holds at most {MAX_RULES} rules"),
                ));
            }
            parsed.push(parse_rule(rule)?);
        }
        Ok(EgressPolicy { rules: parsed })
    }

    /// Whether a request to `scheme://host[:port]` is allowed by name. `host` may be
    /// an IPv6 address in brackets.
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let scheme = scheme.to_ascii_lowercase();
        let host = host
            .strip_prefix('[')
            .and_then(|inner| inner.strip_suffix(']'))
            .unwrap_or(host)
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
    let fail = |reason: &str| EgressRuleError::new(rule, reason);
    if rule.len() > MAX_RULE_BYTES {
        return Err(fail(&format!(
            "a rule is at most {MAX_RULE_BYTES} bytes long"
        )));
    }
    if !rule.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(fail(
            "a rule is printable ASCII without spaces (write international names in punycode)",
        ));
    }
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
    if rest.contains(['/', '?', '#']) {
        return Err(fail("a rule names a host, not a path"));
    }
    if rest.contains('@') {
        return Err(fail("a rule cannot hold credentials (`user@`)"));
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
        let address = address.to_ascii_lowercase();
        let parsed: std::net::Ipv6Addr = address
            .parse()
            .map_err(|_| fail("the text in brackets is not an IPv6 address"))?;
        if parsed.to_string() != address {
            return Err(fail(&format!(
                "write the IPv6 address in its canonical form `[{parsed}]`"
            )));
        }
        (HostPattern::Exact(address), port)
    } else {
        let (host, port) = match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        };
        (parse_host(host).map_err(|reason| fail(&reason))?, port)
    };
    let port = match port {
        None => PortPattern::Default,
        Some("*") => PortPattern::Any,
        Some(port) => match port.parse::<u16>() {
            Ok(number) if number > 0 && number.to_string() == port => PortPattern::Exact(number),
            _ => return Err(fail("the port must be a number from 1 to 65535, or `*`")),
        },
    };
    Ok(Rule { scheme, host, port })
}

/// A host that is not in brackets: a name, `*.name` or a dotted-quad IPv4 address.
fn parse_host(host: &str) -> Result<HostPattern, String> {
    let host = host.to_ascii_lowercase();
    if host == "*" {
        return Err(
            "a bare `*` host is not allowed: name the hosts, or `*.domain` for the subdomains of one"
                .to_string(),
        );
    }
    if let Some(domain) = host.strip_prefix("*.") {
        check_name(domain)?;
        if looks_numeric(domain) {
            return Err("`*.` goes before a domain name, not an address".to_string());
        }
        return Ok(HostPattern::Subdomains(format!(".{domain}")));
    }
    if host.contains('*') {
        return Err("a wildcard host is `*.domain`".to_string());
    }
    // As in URL parsing (WHATWG), a host whose last label is a number is an IPv4
    // address, and only the dotted-quad decimal spelling is accepted for one.
    if looks_numeric(&host) {
        return match host.parse::<std::net::Ipv4Addr>() {
            Ok(address) if address.to_string() == host => Ok(HostPattern::Exact(host)),
            _ => Err(
                "an IPv4 address is written as four decimal numbers without leading zeros (`203.0.113.7`)"
                    .to_string(),
            ),
        };
    }
    check_name(&host)?;
    Ok(HostPattern::Exact(host))
}

/// Whether the last label is a decimal or `0x` hexadecimal number: then the URL
/// parsers of browsers and resolvers read the host as an IPv4 address.
fn looks_numeric(host: &str) -> bool {
    let last = host.rsplit('.').next().unwrap_or(host);
    let digits = last
        .strip_prefix("0x")
        .map_or(last, |hex| if hex.is_empty() { "0" } else { hex });
    !last.is_empty()
        && (last.bytes().all(|b| b.is_ascii_digit())
            || (last.starts_with("0x") && digits.bytes().all(|b| b.is_ascii_hexdigit())))
}

/// A host name of RFC 1123 labels: letters, digits and inner hyphens, 1 to 63 bytes
/// each, at most 253 bytes in all, no trailing dot.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the host is empty".to_string());
    }
    if name.len() > 253 {
        return Err("a host name is at most 253 bytes long".to_string());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(
                "a host name has no empty labels (`..`, or a leading or trailing dot)".to_string(),
            );
        }
        if label.len() > 63 {
            return Err("each label of a host name is at most 63 bytes long".to_string());
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(
                "a host name holds only letters, digits, hyphens and dots (punycode for international names)"
                    .to_string(),
            );
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label of a host name cannot start or end with a hyphen".to_string());
        }
    }
    Ok(())
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
            "HTTP://Upper.Example.ORG",
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
        assert!(policy.allows("http", "upper.example.org", None));
    }

    #[test]
    fn bad_rules_are_refused_with_a_reason() {
        let long_label = format!("https://{}.com", "a".repeat(64));
        let long_name = format!("https://{}com", "abcdefghi.".repeat(26));
        let huge = format!("https://{}", "x".repeat(5000));
        for (rule, reason) in [
            ("api.example.com", "scheme://host"),
            ("ftp://x", "scheme must be"),
            ("https://x/path", "not a path"),
            ("https://x?q", "not a path"),
            ("https://x:port", "port must be"),
            ("https://x:0", "port must be"),
            ("https://x:080", "port must be"),
            ("https://x:70000", "port must be"),
            ("https://a*.b", "wildcard"),
            ("https://*", "bare `*`"),
            ("*://*:*", "bare `*`"),
            ("https://*.", "empty"),
            ("https://*.10.0.0.1", "not an address"),
            ("http://2130706433", "four decimal numbers"),
            ("http://0x7f000001", "four decimal numbers"),
            ("http://0177.0.0.1", "four decimal numbers"),
            ("http://127.1", "four decimal numbers"),
            ("http://127.0.0.1.", "empty labels"),
            (
                "http://[::ffff:7f00:1]",
                "canonical form `[::ffff:127.0.0.1]`",
            ),
            ("http://[0:0:0:0:0:0:0:1]", "canonical form `[::1]`"),
            ("http://[1.2.3.4]", "not an IPv6"),
            ("http://a b.com", "printable ASCII"),
            ("http://a\0b.com", "printable ASCII"),
            ("http://a.com\n", "printable ASCII"),
            ("http://<script>", "letters, digits"),
            ("http://user@a.com", "credentials"),
            ("http://-a.com", "hyphen"),
            ("http://a..com", "empty labels"),
            ("http://münchen.de", "printable ASCII"),
            (long_label.as_str(), "63 bytes"),
            (long_name.as_str(), "253 bytes"),
            (huge.as_str(), "300 bytes"),
        ] {
            let err = EgressPolicy::parse([rule]).unwrap_err();
            assert!(err.to_string().contains(reason), "{rule}: {err}");
            assert!(
                err.to_string().len() < 400,
                "{rule}: the error echoes too much"
            );
        }
    }

    #[test]
    fn canonical_rules_are_accepted() {
        for rule in [
            "https://api.github.com",
            "http://127.0.0.1:8080",
            "http://[::1]",
            "http://[2001:db8::7]:8443",
            "https://xn--mnchen-3ya.de",
            "*://*.zendesk.com:*",
            "https://1password.com",
            "https://a.b-c.d0/",
        ] {
            EgressPolicy::parse([rule]).unwrap_or_else(|err| panic!("{rule}: {err}"));
        }
    }

    #[test]
    fn an_error_quotes_a_control_free_prefix() {
        let err =
            EgressPolicy::parse([format!("http://\u{1b}[31m{}", "y".repeat(100))]).unwrap_err();
        assert!(!err.rule.contains('\u{1b}'), "{}", err.rule);
        assert!(err.rule.ends_with('…'), "{}", err.rule);
        let too_many: Vec<String> = (0..=MAX_RULES)
            .map(|n| format!("https://h{n}.example"))
            .collect();
        assert!(
            EgressPolicy::parse(&too_many)
                .unwrap_err()
                .reason
                .contains("at most")
        );
    }
}
