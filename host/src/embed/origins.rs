//! The URLs of a tenant's embedding settings: the origins allowed to frame its pages
//! (written into a CSP header, so only `scheme://host[:port]` in canonical form gets
//! through) and the OAuth redirect URLs.

/// Most origins a tenant may list.
pub const MAX_ORIGINS: usize = 20;
/// Longest origin or redirect URL, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// Why an origin or a redirect URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("longer than {MAX_URL_BYTES} bytes")]
    TooLong,
    #[error(
        "wildcards are not accepted: list each origin (no origins at all means none may frame the pages)"
    )]
    Wildcard,
    #[error("must start with `https://` or `http://`")]
    Scheme,
    #[error("must be an origin, `scheme://host[:port]`, with no path, query or fragment")]
    NotAnOrigin,
    #[error("must not carry a user name or password")]
    Credentials,
    #[error("is not a valid URL: {0}")]
    Invalid(String),
    #[error("its host must be a DNS name or an IP address")]
    Host,
}

/// Checks an origin and returns its canonical form (lower-case host, default port
/// left out), as browsers compare it in `frame-ancestors`.
pub fn parse_origin(text: &str) -> Result<String, UrlError> {
    if text.len() > MAX_URL_BYTES {
        return Err(UrlError::TooLong);
    }
    if text.contains('*') {
        return Err(UrlError::Wildcard);
    }
    let authority = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or(UrlError::Scheme)?;
    if authority.contains(['/', '?', '#', '\\']) {
        return Err(UrlError::NotAnOrigin);
    }
    if authority.contains('@') {
        return Err(UrlError::Credentials);
    }
    let url = checked_url(text)?;
    Ok(url.origin().ascii_serialization())
}

/// Checks an absolute `http(s)` URL a user may be sent to (the OAuth redirects) and
/// returns it as the URL parser normalizes it.
pub fn parse_redirect(text: &str) -> Result<String, UrlError> {
    if text.len() > MAX_URL_BYTES {
        return Err(UrlError::TooLong);
    }
    if !(text.starts_with("https://") || text.starts_with("http://")) {
        return Err(UrlError::Scheme);
    }
    let url = checked_url(text)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    Ok(url.to_string())
}

/// Parses an http(s) URL whose host is an IP address or a name of letters, digits,
/// dots and hyphens (after IDNA): nothing that could end a CSP source expression.
fn checked_url(text: &str) -> Result<url::Url, UrlError> {
    let url = url::Url::parse(text).map_err(|err| UrlError::Invalid(err.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlError::Scheme);
    }
    match url.host() {
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => Ok(url),
        Some(url::Host::Domain(name))
            if !name.is_empty()
                && name
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'.' || byte == b'-') =>
        {
            Ok(url)
        }
        _ => Err(UrlError::Host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_canonical_scheme_host_port() {
        assert_eq!(
            parse_origin("https://App.Vendor.com").unwrap(),
            "https://app.vendor.com"
        );
        assert_eq!(
            parse_origin("https://app.vendor.com:443").unwrap(),
            "https://app.vendor.com"
        );
        assert_eq!(
            parse_origin("http://localhost:8080").unwrap(),
            "http://localhost:8080"
        );
        assert_eq!(
            parse_origin("http://127.0.0.1:3000").unwrap(),
            "http://127.0.0.1:3000"
        );
        assert_eq!(parse_origin("http://[::1]:80").unwrap(), "http://[::1]");
    }

    #[test]
    fn anything_more_than_an_origin_is_refused() {
        assert_eq!(parse_origin("https://a.com/"), Err(UrlError::NotAnOrigin));
        assert_eq!(
            parse_origin("https://a.com/app"),
            Err(UrlError::NotAnOrigin)
        );
        assert_eq!(parse_origin("https://a.com?x"), Err(UrlError::NotAnOrigin));
        assert_eq!(parse_origin("https://*.a.com"), Err(UrlError::Wildcard));
        assert_eq!(parse_origin("*"), Err(UrlError::Wildcard));
        assert_eq!(parse_origin("a.com"), Err(UrlError::Scheme));
        assert_eq!(parse_origin("ftp://a.com"), Err(UrlError::Scheme));
        assert_eq!(parse_origin("'none'"), Err(UrlError::Scheme));
        assert_eq!(
            parse_origin("https://u:p@a.com"),
            Err(UrlError::Credentials)
        );
        assert_eq!(parse_origin("https://a.com;b"), Err(UrlError::Host));
        assert!(parse_origin("https://a b.com").is_err());
        assert!(parse_origin("https://").is_err());
        assert!(parse_origin("https://a.com:99999").is_err());
    }

    #[test]
    fn redirects_are_absolute_http_urls() {
        assert_eq!(
            parse_redirect("https://app.vendor.com/integrations?done=1").unwrap(),
            "https://app.vendor.com/integrations?done=1"
        );
        assert_eq!(parse_redirect("/relative"), Err(UrlError::Scheme));
        assert_eq!(parse_redirect("javascript:alert(1)"), Err(UrlError::Scheme));
        assert_eq!(
            parse_redirect("https://u:p@a.com/x"),
            Err(UrlError::Credentials)
        );
    }
}
