//! Requests the host itself sends on a tenant's behalf (an OAuth token exchange, a
//! token revocation): the same address checks, timeouts and TLS as a guest's
//! requests, a whole body in, a capped body out, and redirects never followed.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};

use super::address::NetworkPolicy;
use super::connect::{self, Target};

/// Why a host request got no response.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL is not an absolute `http` or `https` URL with a host.
    #[error("`{0}` is not an absolute http(s) URL")]
    BadUrl(String),
    /// Every address of the host is in a range the operator's network policy refuses.
    #[error("the operator's network policy refuses the address of `{0}`")]
    Refused(String),
    /// The response body is longer than the caller allows.
    #[error("the response body is longer than {0} bytes")]
    TooLarge(usize),
    /// Name resolution, connection, TLS or HTTP failed, or a timeout passed.
    #[error("request to `{host}` failed: {error}")]
    Failed {
        /// The host the request went to.
        host: String,
        /// What failed, as wasi-http names it.
        error: String,
    },
}

/// Sends `request` (an absolute URL) under `network`'s policy and limits and reads
/// the whole response, refusing a body longer than `max_response_bytes`. A 3xx
/// response is returned as it is, never followed.
///
/// ```no_run
/// # async fn demo() -> Result<(), sluice_runtime::FetchError> {
/// use std::sync::Arc;
/// let network = Arc::new(sluice_runtime::NetworkPolicy::new());
/// let request = http::Request::post("https://auth.example.com/token")
///     .body(b"grant_type=client_credentials".to_vec())
///     .expect("a valid request");
/// let response = sluice_runtime::fetch(&network, request, 64 * 1024).await?;
/// println!("{}", response.status());
/// # Ok(()) }
/// ```
pub async fn fetch(
    network: &Arc<NetworkPolicy>,
    request: http::Request<Vec<u8>>,
    max_response_bytes: usize,
) -> Result<http::Response<Vec<u8>>, FetchError> {
    let uri = request.uri().clone();
    let bad_url = || FetchError::BadUrl(uri.to_string());
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(bad_url()),
    };
    let host = uri.host().ok_or_else(bad_url)?;
    // `Uri::host` keeps the brackets of an IPv6 literal; the connector wants them off.
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let target = Target {
        port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
        host: host.clone(),
        tls,
    };
    let mut request = request.map(|body| {
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync()
    });
    if !request.headers().contains_key(http::header::HOST) {
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or(&host);
        if let Ok(value) = http::HeaderValue::from_str(authority) {
            request.headers_mut().insert(http::header::HOST, value);
        }
    }
    let mut refused = false;
    let failed = |error: wasmtime_wasi_http::Error| FetchError::Failed {
        host: host.clone(),
        error: error.to_string(),
    };
    let sent = connect::send(request, None, target, Arc::clone(network), (), |_| {
        refused = true
    })
    .await;
    let (response, connection) = match sent {
        Ok(sent) => sent,
        Err(_) if refused => return Err(FetchError::Refused(host)),
        Err(error) => return Err(failed(error)),
    };
    // The connection task drives the body; it ends when the body is read or dropped.
    tokio::spawn(Box::into_pin(connection));
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, max_response_bytes)
        .collect()
        .await
        .map_err(
            |error| match error.downcast::<wasmtime_wasi_http::Error>() {
                Ok(error) => failed(*error),
                Err(_) => FetchError::TooLarge(max_response_bytes),
            },
        )?
        .to_bytes();
    Ok(http::Response::from_parts(parts, body.to_vec()))
}
