//! Opening an outbound connection for a guest: resolve the name once, keep only the
//! addresses the operator's [`NetworkPolicy`] permits, connect to one of those (never
//! resolving again), speak TLS over that same socket for `https` with the request's
//! host as the server name, and send the request over HTTP/1.1 within the connect,
//! first-byte and between-bytes timeouts.
//!
//! Modelled on `wasmtime_wasi_http::default_send_request`, which resolves and connects
//! in one step (`TcpStream::connect(host)`) and so cannot check the address.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

use super::address::NetworkPolicy;

/// Where a request goes, taken from its URI.
pub(crate) struct Target {
    /// A host name, or an IP address without brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: bool,
}

/// Why no connection was opened because of the destination's address.
pub(crate) enum Refused {
    /// Every address the name resolved to is private or special-purpose.
    Address(IpAddr),
}

/// The connection task a response hands back: it drives the socket until the
/// response body is done, and holds `guard` (the request's in-flight slots) so long.
pub(crate) type ConnectionTask = Box<dyn Future<Output = Result<(), Error>> + Send>;

/// Resolves, checks, connects and sends `request`. `on_refused` is told when the
/// address check refuses the destination (the caller logs it).
pub(crate) async fn send<G: Send + 'static>(
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    target: Target,
    network: Arc<NetworkPolicy>,
    guard: G,
    on_refused: impl FnOnce(Refused) + Send,
) -> Result<(http::Response<WasiBody>, ConnectionTask), Error> {
    let limits = network.limits();
    let shorter =
        |asked: Option<Duration>, cap: Duration| asked.map_or(cap, |asked| asked.min(cap));
    let connect_timeout = shorter(
        options.and_then(|o| o.connect_timeout),
        limits.connect_timeout,
    );
    let first_byte_timeout = shorter(
        options.and_then(|o| o.first_byte_timeout),
        limits.first_byte_timeout,
    );
    let between_bytes_timeout = shorter(
        options.and_then(|o| o.between_bytes_timeout),
        limits.between_bytes_timeout,
    )
    // Tokio panics on a zero interval.
    .max(Duration::from_nanos(1));
    let connect_deadline = Instant::now() + connect_timeout;

    let addresses = match target.host.parse::<IpAddr>() {
        Ok(address) => vec![address],
        Err(_) => {
            let lookup = network.resolver().resolve(&target.host, target.port);
            match tokio::time::timeout_at(connect_deadline, lookup).await {
                Err(_) => return Err(Error::DnsTimeout),
                Ok(Err(_)) => return Err(Error::DestinationNotFound),
                Ok(Ok(addresses)) if addresses.is_empty() => {
                    return Err(Error::DestinationNotFound);
                }
                Ok(Ok(addresses)) => addresses,
            }
        }
    };
    let permitted: Vec<IpAddr> = addresses
        .iter()
        .copied()
        .filter(|address| network.permits(*address))
        .collect();
    if permitted.is_empty() {
        on_refused(Refused::Address(addresses[0]));
        return Err(Error::DestinationIpProhibited);
    }

    let stream = connect_any(&permitted, target.port, connect_deadline).await?;
    let stream: Box<dyn Stream> = if target.tls {
        let server_name = match target.host.parse::<IpAddr>() {
            Ok(address) => rustls::pki_types::ServerName::from(address),
            Err(_) => rustls::pki_types::ServerName::try_from(target.host.clone())
                .map_err(Error::InvalidDnsNameError)?,
        };
        let config = TLS_CONFIG
            .as_ref()
            .map(Arc::clone)
            .map_err(|err| Error::InternalError(err.clone()))?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let tls = tokio::time::timeout_at(connect_deadline, connector.connect(server_name, stream))
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(Error::Tls)?;
        Box::new(tls)
    } else {
        Box::new(stream)
    };
    let (mut sender, connection) = tokio::time::timeout_at(
        connect_deadline,
        hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;

    // The request carries the scheme and authority; on the wire (not to a proxy) the
    // request line holds the path only.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str())
        .to_string();
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;

    let send = async move {
        let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)?
            .map_err(Error::from)?;
        let mut timeout = tokio::time::interval(between_bytes_timeout);
        timeout.reset();
        Ok::<_, Error>(response.map(|incoming| TimedBody { incoming, timeout }))
    };
    // Drive the connection while waiting for the response head.
    let mut send = pin!(send);
    let mut connection = Some(connection);
    let response = std::future::poll_fn(|cx| match send.as_mut().poll(cx) {
        Poll::Ready(result) => Poll::Ready(result),
        Poll::Pending => {
            let Some(driver) = connection.as_mut() else {
                return Poll::Pending;
            };
            let result = ready!(Pin::new(driver).poll(cx));
            connection = None;
            match result {
                Ok(()) => send.as_mut().poll(cx),
                Err(err) => Poll::Ready(Err(Error::from(err))),
            }
        }
    })
    .await?;
    let task = async move {
        // The slots are given back when the connection is done or the task dropped
        // (the guest dropped the response, or the execution ended).
        let _guard = guard;
        let Some(connection) = connection else {
            return Ok(());
        };
        connection.await.map_err(|err| {
            if err.is_timeout() {
                Error::HttpResponseTimeout
            } else {
                Error::from(err)
            }
        })
    };
    Ok((response.map(BodyExt::boxed_unsync), Box::new(task)))
}

/// Tries each permitted address in turn until one accepts, within the deadline.
async fn connect_any(
    addresses: &[IpAddr],
    port: u16,
    deadline: Instant,
) -> Result<TcpStream, Error> {
    let mut last = Error::ConnectionRefused;
    for address in addresses {
        // A mapped address is connected to as the IPv4 address it was checked as.
        let connect = TcpStream::connect(SocketAddr::new(address.to_canonical(), port));
        match tokio::time::timeout_at(deadline, connect).await {
            Err(_) => return Err(Error::ConnectionTimeout),
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(err)) if err.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = Error::ConnectionRefused;
            }
            Ok(Err(err)) => last = Error::Connect(err),
        }
    }
    Err(last)
}

trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin> Stream for T {}

/// The TLS client settings: the Mozilla roots (`webpki-roots`) and the ring provider,
/// as in wasmtime-wasi-http's default path; built once.
static TLS_CONFIG: LazyLock<Result<Arc<rustls::ClientConfig>, Option<String>>> =
    LazyLock::new(|| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map(|builder| Arc::new(builder.with_root_certificates(roots).with_no_client_auth()))
        .map_err(|err| Some(format!("TLS client configuration: {err}")))
    });

/// A response body that fails when the server stays silent between two frames for
/// longer than the between-bytes timeout.
struct TimedBody {
    incoming: hyper::body::Incoming,
    timeout: tokio::time::Interval,
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(if err.is_timeout() {
                Error::HttpResponseTimeout
            } else {
                Error::from(err)
            }))),
            Poll::Ready(Some(Ok(frame))) => {
                self.timeout.reset();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                ready!(self.timeout.poll_tick(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}
