//! Outbound HTTP over the host's `wasi:http/outgoing-handler`: [`Http`] builds a
//! request ([`RequestBuilder`]: headers, auth, query, JSON or byte bodies, timeouts),
//! `send` streams it out and reads the [`Response`]; failures map onto [`Error`] kinds.
//!
//! The host checks every request against the instance's egress allow-list and never
//! follows redirects.

use std::time::Duration;

use base64::Engine as _;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::flow::wasi::http::outgoing_handler;
use crate::bindings::flow::wasi::http::types as wasi;
use crate::bindings::flow::wasi::io::streams::{OutputStream, StreamError};
use crate::context::Connection;
use crate::error::Error;
use crate::output::to_json_text;

/// Entry point of the HTTP client: `Http::get(url).bearer(token).send()?`.
pub struct Http;

impl Http {
    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> RequestBuilder {
        Self::request("GET", url)
    }

    /// A `POST` request.
    pub fn post(url: impl Into<String>) -> RequestBuilder {
        Self::request("POST", url)
    }

    /// A `PUT` request.
    pub fn put(url: impl Into<String>) -> RequestBuilder {
        Self::request("PUT", url)
    }

    /// A `PATCH` request.
    pub fn patch(url: impl Into<String>) -> RequestBuilder {
        Self::request("PATCH", url)
    }

    /// A `DELETE` request.
    pub fn delete(url: impl Into<String>) -> RequestBuilder {
        Self::request("DELETE", url)
    }

    /// A request with any method (`"HEAD"`, `"OPTIONS"`, or an extension method).
    pub fn request(method: impl Into<String>, url: impl Into<String>) -> RequestBuilder {
        RequestBuilder {
            method: method.into(),
            url: url.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
            connection_key: None,
            deferred: None,
        }
    }
}

/// An outbound request being built. Methods consume and return the builder; problems
/// found while building (a body that does not serialize) surface from [`send`](Self::send).
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    method: String,
    url: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
    connection_key: Option<String>,
    deferred: Option<Error>,
}

impl RequestBuilder {
    /// Adds a header (names are case-insensitive; a name may repeat).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    /// Sets `Authorization: Basic <base64(user:password)>`.
    pub fn basic_auth(self, user: &str, password: &str) -> Self {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.header("authorization", format!("Basic {encoded}"))
    }

    /// Authenticates with the connection's OAuth token (a connection without one makes
    /// `send` fail with a connection error), and attributes 401/403 responses to that
    /// connection in [`Response::error_for_status`].
    pub fn connection(mut self, connection: &Connection) -> Self {
        self.connection_key = Some(connection.key().to_string());
        match connection.bearer_token() {
            Ok(token) => self.bearer(token),
            Err(e) => {
                self.deferred.get_or_insert(e);
                self
            }
        }
    }

    /// Attributes 401/403 responses to the connection with config-variable key `key`
    /// (when the auth header was built from its fields by hand).
    pub fn connection_key(mut self, key: impl Into<String>) -> Self {
        self.connection_key = Some(key.into());
        self
    }

    /// Appends `name=value` to the URL's query string, percent-encoding both.
    pub fn query(mut self, name: impl Into<String>, value: impl ToString) -> Self {
        self.query.push((name.into(), value.to_string()));
        self
    }

    /// Sends `value` as JSON (`content-type: application/json`).
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        match to_json_text(value) {
            Ok(text) => {
                self.body = text.into_bytes();
                self.set_content_type("application/json")
            }
            Err(e) => {
                self.deferred.get_or_insert(e);
                self
            }
        }
    }

    /// Sends `pairs` as `application/x-www-form-urlencoded` (OAuth token endpoints).
    pub fn form<K: AsRef<str>, V: AsRef<str>>(mut self, pairs: &[(K, V)]) -> Self {
        self.body = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k.as_ref()), encode(v.as_ref())))
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes();
        self.set_content_type("application/x-www-form-urlencoded")
    }

    /// Sends raw bytes; set a `content-type` header to say what they are.
    pub fn body(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.body = bytes.into();
        self
    }

    /// Bounds the connect time, the wait for the first response byte, and each wait
    /// between response bytes, to `timeout` each. A timeout is [`Error::Retryable`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the content type unless the author set one already.
    fn set_content_type(self, content_type: &str) -> Self {
        if self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        {
            self
        } else {
            self.header("content-type", content_type)
        }
    }

    /// The URL the request goes to, query string included, without sending anything.
    pub fn url(&self) -> Result<String, Error> {
        let target = Target::parse(&self.url, &self.query)?;
        Ok(target.to_string())
    }

    /// Sends the request and reads the whole response. A response of any status is
    /// `Ok`; call [`Response::error_for_status`] (or use [`send_json`](Self::send_json))
    /// to turn 4xx/5xx into errors. Transport failures: see [`transport_error`].
    pub fn send(self) -> Result<Response, Error> {
        if let Some(e) = self.deferred {
            return Err(e);
        }
        let target = Target::parse(&self.url, &self.query)?;
        let what = format!("{} {}", self.method, target.redacted());
        let response = send(
            &self.method,
            &target,
            &self.headers,
            &self.body,
            self.timeout,
            &what,
        )?;
        Ok(Response {
            status: response.status,
            headers: response.headers,
            body: response.body,
            what,
            connection_key: self.connection_key,
        })
    }

    /// Sends the request, fails on a 4xx/5xx status, and parses the body as `T`.
    pub fn send_json<T: DeserializeOwned>(self) -> Result<T, Error> {
        self.send()?.error_for_status()?.json()
    }
}

/// A complete HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names are lower-case; a name may repeat.
    pub headers: Vec<(String, String)>,
    /// The body, read whole.
    pub body: Vec<u8>,
    /// `METHOD scheme://host/path` of the request, for error messages.
    what: String,
    connection_key: Option<String>,
}

impl Response {
    /// Builds a response by hand (for native unit tests of code that takes one).
    pub fn new(status: u16, headers: Vec<(String, String)>, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers,
            body: body.into(),
            what: "request".to_string(),
            connection_key: None,
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.body)
            .map_err(|e| Error::fatal(format!("response of {} is not UTF-8: {e}", self.what)))
    }

    /// The body parsed as JSON into `T`. A body of another shape is [`Error::Fatal`],
    /// with the failing field's path and the start of the body.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let mut de = serde_json::Deserializer::from_slice(&self.body);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            Error::fatal(format!(
                "response of {} is not the expected JSON (at `{}`: {}); body starts with: {}",
                self.what,
                e.path(),
                e.inner(),
                body_prefix(&self.body)
            ))
        })
    }

    /// `Ok(self)` for 1xx, 2xx and 3xx statuses; otherwise the error the status calls
    /// for: 401/403 are [`Error::Connection`] (attributed to the request's connection,
    /// see [`RequestBuilder::connection`]), 408/425/429/5xx are [`Error::Retryable`], other
    /// 4xx are [`Error::Fatal`]. The message carries the status and the body's start.
    pub fn error_for_status(self) -> Result<Self, Error> {
        match status_error(
            self.status,
            &self.what,
            &self.body,
            self.connection_key.as_deref(),
        ) {
            Some(e) => Err(e),
            None => Ok(self),
        }
    }
}

/// The error for a response status, or `None` when the status is not an error.
fn status_error(
    status: u16,
    what: &str,
    body: &[u8],
    connection_key: Option<&str>,
) -> Option<Error> {
    if status < 400 {
        return None;
    }
    let message = format!("{what} returned HTTP {status}: {}", body_prefix(body));
    Some(match status {
        401 | 403 => Error::connection(connection_key.unwrap_or_default(), message),
        408 | 425 | 429 | 500..=599 => Error::retryable(message),
        _ => Error::fatal(message),
    })
}

/// Up to 200 characters of `body`, lossily decoded, for error messages.
fn body_prefix(body: &[u8]) -> String {
    const MAX_CHARS: usize = 200;
    if body.is_empty() {
        return "(empty body)".to_string();
    }
    // 4 bytes per character at most: this window always holds the first 200, and a
    // huge body is never decoded whole for a message.
    let window = &body[..body.len().min(MAX_CHARS * 4)];
    let text = String::from_utf8_lossy(window);
    let mut chars = text.chars();
    let mut prefix: String = chars.by_ref().take(MAX_CHARS).collect();
    if chars.next().is_some() || window.len() < body.len() {
        prefix.push('…');
    }
    prefix
}

/// How a transport failure (no response at all) maps onto [`Error`]:
/// `HTTP-request-denied` (the host is not on the instance's egress allow-list) and
/// request errors that the same request would hit again (invalid URI or method,
/// oversized headers or body, a prohibited destination, a redirect loop, host
/// misconfiguration) are [`Error::Fatal`]; everything else (DNS, connect, TLS, timeouts,
/// connection resets, incomplete responses) is [`Error::Retryable`].
pub fn transport_error(what: &str, code: &wasi::ErrorCode) -> Error {
    use wasi::ErrorCode as C;
    match code {
        C::HttpRequestDenied => Error::fatal(format!(
            "{what} denied: the host is not on the instance's allow-list of outbound hosts"
        )),
        C::HttpRequestMethodInvalid
        | C::HttpRequestUriInvalid
        | C::HttpRequestUriTooLong
        | C::HttpRequestLengthRequired
        | C::HttpRequestBodySize(_)
        | C::HttpRequestHeaderSectionSize(_)
        | C::HttpRequestHeaderSize(_)
        | C::HttpRequestTrailerSectionSize(_)
        | C::HttpRequestTrailerSize(_)
        | C::DestinationIpProhibited
        | C::LoopDetected
        | C::ConfigurationError => Error::fatal(format!("{what} failed: {code:?}")),
        _ => Error::retryable(format!("{what} failed: {code:?}")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

/// A parsed request target: what `wasi:http` wants as separate fields.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    scheme: Scheme,
    authority: String,
    /// Starts with `/`; includes the query string, never a fragment.
    path_with_query: String,
}

impl Target {
    fn parse(url: &str, extra_query: &[(String, String)]) -> Result<Self, Error> {
        let invalid = |why: &str| Error::invalid_input(format!("invalid URL `{url}`: {why}"));
        let (scheme, rest) = match url.split_once("://") {
            Some((s, rest)) if s.eq_ignore_ascii_case("https") => (Scheme::Https, rest),
            Some((s, rest)) if s.eq_ignore_ascii_case("http") => (Scheme::Http, rest),
            _ => return Err(invalid("it must start with http:// or https://")),
        };
        // The fragment never goes on the wire.
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() {
            return Err(invalid("it has no host"));
        }
        if authority.contains('@') {
            return Err(invalid(
                "credentials in the URL are not sent; use `basic_auth` instead",
            ));
        }
        if authority
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
            || path.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid("it contains whitespace; percent-encode it"));
        }
        let mut path_with_query = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        for (name, value) in extra_query {
            let separator = if !path_with_query.contains('?') {
                "?"
            } else if path_with_query.ends_with(['?', '&']) {
                ""
            } else {
                "&"
            };
            path_with_query.push_str(separator);
            path_with_query.push_str(&encode(name));
            path_with_query.push('=');
            path_with_query.push_str(&encode(value));
        }
        Ok(Self {
            scheme,
            authority: authority.to_string(),
            path_with_query,
        })
    }

    /// The URL without its query string, which may carry secrets (API keys), for
    /// error messages.
    fn redacted(&self) -> String {
        let path = self
            .path_with_query
            .split_once('?')
            .map_or(self.path_with_query.as_str(), |(p, _)| p);
        format!("{}://{}{}", self.scheme_str(), self.authority, path)
    }

    fn scheme_str(&self) -> &'static str {
        match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme_str(),
            self.authority,
            self.path_with_query
        )
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so the result is
/// safe in a query name or value and in a form body.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn method(name: &str) -> wasi::Method {
    match name.to_ascii_uppercase().as_str() {
        "GET" => wasi::Method::Get,
        "HEAD" => wasi::Method::Head,
        "POST" => wasi::Method::Post,
        "PUT" => wasi::Method::Put,
        "DELETE" => wasi::Method::Delete,
        "CONNECT" => wasi::Method::Connect,
        "OPTIONS" => wasi::Method::Options,
        "TRACE" => wasi::Method::Trace,
        "PATCH" => wasi::Method::Patch,
        _ => wasi::Method::Other(name.to_string()),
    }
}

struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Reads at most this much per host call; a larger body takes several reads.
const READ_CHUNK: u64 = 64 * 1024;

/// One request through `wasi:http`, with the resource lifetimes the host enforces:
/// every child resource (stream, pollable, fields) is dropped before its parent.
fn send(
    method_name: &str,
    target: &Target,
    headers: &[(String, String)],
    body: &[u8],
    timeout: Option<Duration>,
    what: &str,
) -> Result<RawResponse, Error> {
    let mut entries: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect();
    // A known length lets the body go out unchunked, which some APIs require (411
    // otherwise), and lets a server that answers early drain it.
    let sends_body = !body.is_empty()
        || matches!(
            method_name.to_ascii_uppercase().as_str(),
            "POST" | "PUT" | "PATCH"
        );
    if sends_body && !entries.iter().any(|(n, _)| n == "content-length") {
        entries.push(("content-length".into(), body.len().to_string().into_bytes()));
    }
    let fields = wasi::Fields::from_list(&entries)
        .map_err(|e| Error::fatal(format!("{what}: request headers refused: {e:?}")))?;
    let request = wasi::OutgoingRequest::new(fields);
    let invalid = |part: &str| Error::invalid_input(format!("{what}: invalid {part}"));
    request
        .set_method(&method(method_name))
        .map_err(|()| invalid("method"))?;
    let scheme = match target.scheme {
        Scheme::Http => wasi::Scheme::Http,
        Scheme::Https => wasi::Scheme::Https,
    };
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| invalid("scheme"))?;
    request
        .set_authority(Some(&target.authority))
        .map_err(|()| invalid("host"))?;
    request
        .set_path_with_query(Some(&target.path_with_query))
        .map_err(|()| invalid("path"))?;
    let options = timeout.map(|t| {
        let options = wasi::RequestOptions::new();
        let nanos = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX);
        // A host that does not support one of these keeps its own default; the
        // execution's wall-clock limit still bounds the request.
        let _ = options.set_connect_timeout(Some(nanos));
        let _ = options.set_first_byte_timeout(Some(nanos));
        let _ = options.set_between_bytes_timeout(Some(nanos));
        options
    });

    // The body is written in two phases. First, before the request is handed over,
    // whatever the host buffers without blocking: a body that fits goes out whole,
    // right behind the headers, so a server answering early (a 401 before reading
    // the body) cannot cut it off. The rest is written after `handle`, as the host
    // sends: the host's buffer is bounded, so writing a large body first would block
    // forever.
    let outgoing_body = request
        .body()
        .map_err(|()| Error::fatal(format!("{what}: request body already taken")))?;
    let stream = outgoing_body
        .write()
        .map_err(|()| Error::fatal(format!("{what}: request body stream already taken")))?;
    let mut offset = 0;
    write_body(&stream, body, &mut offset, false, what)?;
    let rest = if offset == body.len() {
        drop(stream);
        wasi::OutgoingBody::finish(outgoing_body, None).map_err(|c| transport_error(what, &c))?;
        None
    } else {
        Some((stream, outgoing_body))
    };

    let pending =
        outgoing_handler::handle(request, options).map_err(|c| transport_error(what, &c))?;
    let written = match rest {
        None => Ok(()),
        Some((stream, outgoing_body)) => {
            let written = write_body(&stream, body, &mut offset, true, what);
            // The stream is a child of the body: it goes first.
            drop(stream);
            let finished = wasi::OutgoingBody::finish(outgoing_body, None);
            written.and_then(|()| finished.map_err(|c| transport_error(what, &c)))
        }
    };

    let response = wait_for_response(&pending, what);
    drop(pending);
    // When the body could not be written, the response usually holds the cause (a
    // refused connection); report that, and the write failure otherwise.
    let response = match (response, written) {
        (Ok(response), Ok(())) => response,
        (Err(e), _) | (Ok(_), Err(e)) => return Err(e),
    };

    let status = response.status();
    let headers = {
        let fields = response.headers();
        let entries = fields.entries();
        drop(fields);
        entries
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect()
    };
    let body = read_body(&response, what)?;
    drop(response);
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

/// Writes `bytes[*offset..]` in chunks the host accepts (`check-write` says how
/// much), advancing `offset`. Without `block`, stops as soon as the host's buffer is
/// full; with it, waits for room until everything is written, then flushes.
fn write_body(
    stream: &OutputStream,
    bytes: &[u8],
    offset: &mut usize,
    block: bool,
    what: &str,
) -> Result<(), Error> {
    let failed = |e: StreamError| match e {
        StreamError::Closed => {
            Error::retryable(format!("{what}: connection closed while sending the body"))
        }
        StreamError::LastOperationFailed(err) => Error::retryable(format!(
            "{what}: sending the body failed: {}",
            err.to_debug_string()
        )),
    };
    while *offset < bytes.len() {
        let budget = match stream.check_write().map_err(failed)? {
            0 if !block => return Ok(()),
            0 => {
                // The pollable is a child of the stream: the temporary goes first.
                stream.subscribe().block();
                continue;
            }
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        let end = *offset + budget.min(bytes.len() - *offset);
        stream.write(&bytes[*offset..end]).map_err(failed)?;
        *offset = end;
    }
    if block {
        match stream.blocking_flush() {
            // Every byte was handed to the host. With a content length, the host's
            // HTTP client drops the body as soon as it has that many bytes, which can
            // happen before this flush: the stream then reads as closed although
            // nothing was lost. The response says whether the server got it all.
            Ok(()) | Err(StreamError::Closed) => {}
            Err(e) => return Err(failed(e)),
        }
    }
    Ok(())
}

fn wait_for_response(
    pending: &wasi::FutureIncomingResponse,
    what: &str,
) -> Result<wasi::IncomingResponse, Error> {
    // The temporary pollable is dropped at the end of the statement, before `pending`.
    pending.subscribe().block();
    match pending.get() {
        Some(Ok(Ok(response))) => Ok(response),
        Some(Ok(Err(code))) => Err(transport_error(what, &code)),
        Some(Err(())) => Err(Error::fatal(format!("{what}: response already taken"))),
        None => Err(Error::fatal(format!(
            "{what}: response not ready after its pollable fired"
        ))),
    }
}

/// Reads the whole response body, chunk by chunk, until the stream closes.
fn read_body(response: &wasi::IncomingResponse, what: &str) -> Result<Vec<u8>, Error> {
    let body = response
        .consume()
        .map_err(|()| Error::fatal(format!("{what}: response body already consumed")))?;
    let stream = body
        .stream()
        .map_err(|()| Error::fatal(format!("{what}: response body stream already taken")))?;
    let mut bytes = Vec::new();
    let result = loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break Ok(()),
            Err(StreamError::LastOperationFailed(e)) => {
                break Err(Error::retryable(format!(
                    "{what}: reading the response body failed: {}",
                    e.to_debug_string()
                )));
            }
        }
    };
    drop(stream);
    drop(body);
    result.map(|()| bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Target {
        Target::parse(url, &[]).unwrap()
    }

    #[test]
    fn parses_urls_into_wasi_parts() {
        let t = target("https://api.github.com/repos/a/b?x=1#frag");
        assert_eq!(t.scheme, Scheme::Https);
        assert_eq!(t.authority, "api.github.com");
        assert_eq!(t.path_with_query, "/repos/a/b?x=1");
        assert_eq!(target("http://localhost:8080").path_with_query, "/");
        assert_eq!(target("HTTP://h?q=1").path_with_query, "/?q=1");
        assert_eq!(target("http://h:1/a").authority, "h:1");
        for bad in [
            "ftp://h/",
            "h/path",
            "https:///x",
            "https://u:p@h/",
            "https://h/a b",
        ] {
            let err = Target::parse(bad, &[]).unwrap_err();
            assert_eq!(err.kind(), "invalid-input", "{bad}: {err}");
        }
    }

    #[test]
    fn appends_and_encodes_query_parameters() {
        let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let t =
            Target::parse("https://h/search", &q(&[("q", "a b&c=d/é"), ("page", "2")])).unwrap();
        assert_eq!(t.path_with_query, "/search?q=a%20b%26c%3Dd%2F%C3%A9&page=2");
        let t = Target::parse("https://h/s?x=1", &q(&[("y", "~_.-")])).unwrap();
        assert_eq!(t.path_with_query, "/s?x=1&y=~_.-");
        let t = Target::parse("https://h/s?", &q(&[("y", "2")])).unwrap();
        assert_eq!(t.path_with_query, "/s?y=2");
        assert_eq!(t.redacted(), "https://h/s");
        assert_eq!(
            Http::get("https://h/a").query("k", 5).url().unwrap(),
            "https://h/a?k=5"
        );
    }

    #[test]
    fn builder_sets_auth_and_bodies() {
        let r = Http::post("https://h/").basic_auth("Aladdin", "open sesame");
        assert_eq!(
            r.headers,
            vec![(
                "authorization".to_string(),
                "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==".to_string()
            )]
        );
        let r = Http::post("https://h/").json(&serde_json::json!({"a": 1}));
        assert_eq!(r.body, br#"{"a":1}"#);
        assert_eq!(
            r.headers,
            vec![("content-type".into(), "application/json".into())]
        );
        let r = Http::post("https://h/")
            .header("Content-Type", "application/vnd.x+json")
            .json(&1);
        assert_eq!(r.headers.len(), 1);
        let r = Http::post("https://h/").form(&[("grant_type", "refresh_token"), ("x", "a b")]);
        assert_eq!(r.body, b"grant_type=refresh_token&x=a%20b");
        let r = Http::get("https://h/").bearer("t0k");
        assert_eq!(r.headers[0].1, "Bearer t0k");
    }

    #[test]
    fn connection_without_token_fails_on_send() {
        let conn = Connection::new("gh", "api-key", serde_json::Map::new(), None);
        let err = Http::get("https://h/")
            .connection(&conn)
            .send()
            .unwrap_err();
        assert_eq!(err, conn.bearer_token().unwrap_err());
    }

    #[test]
    fn statuses_map_to_error_kinds() {
        let kind = |status: u16| {
            Response::new(status, vec![], "nope")
                .error_for_status()
                .err()
                .map(|e| e.kind())
        };
        assert_eq!(kind(200), None);
        assert_eq!(kind(204), None);
        assert_eq!(kind(302), None);
        assert_eq!(kind(401), Some("connection"));
        assert_eq!(kind(403), Some("connection"));
        assert_eq!(kind(408), Some("retryable"));
        assert_eq!(kind(429), Some("retryable"));
        assert_eq!(kind(503), Some("retryable"));
        assert_eq!(kind(404), Some("fatal"));
        assert_eq!(kind(422), Some("fatal"));
        let err = status_error(401, "GET https://h/x", b"bad token", Some("gh")).unwrap();
        assert_eq!(
            err,
            Error::connection("gh", "GET https://h/x returned HTTP 401: bad token")
        );
    }

    #[test]
    fn body_prefixes_are_bounded() {
        assert_eq!(body_prefix(b""), "(empty body)");
        assert_eq!(body_prefix(b"short"), "short");
        let long = "é".repeat(1000);
        let prefix = body_prefix(long.as_bytes());
        assert_eq!(prefix.chars().count(), 201);
        assert!(prefix.ends_with('…'));
        assert_eq!(body_prefix(&[0xff, b'a']), "\u{fffd}a");
    }

    #[test]
    fn transport_errors_map_to_kinds() {
        use wasi::ErrorCode as C;
        let denied = transport_error("GET https://evil/", &C::HttpRequestDenied);
        assert_eq!(denied.kind(), "fatal");
        assert!(denied.message().contains("allow-list"), "{denied}");
        assert_eq!(
            transport_error("x", &C::ConnectionRefused).kind(),
            "retryable"
        );
        assert_eq!(transport_error("x", &C::DnsTimeout).kind(), "retryable");
        assert_eq!(
            transport_error("x", &C::ConnectionTimeout).kind(),
            "retryable"
        );
        assert_eq!(
            transport_error("x", &C::HttpRequestUriInvalid).kind(),
            "fatal"
        );
    }

    #[test]
    fn response_helpers() {
        let r = Response::new(
            200,
            vec![("content-type".into(), "application/json".into())],
            r#"{"id": 3}"#,
        );
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert!(r.is_success());
        assert_eq!(r.json::<serde_json::Value>().unwrap()["id"], 3);
        let err = r.json::<Vec<u8>>().unwrap_err();
        assert_eq!(err.kind(), "fatal");
        assert!(err.message().contains(r#"{"id": 3}"#), "{err}");
        assert_eq!(r.text().unwrap(), r#"{"id": 3}"#);
    }
}
