//! Starting and stopping the server: bind, open the data directory, start the
//! background tasks, and serve the router until shutdown through the server's own
//! accept loop, which owns the listener's limits: a cap on open connections (sized
//! under the file-descriptor limit, raised at start), a header read timeout and a
//! body read timeout, so that clients that connect and then send slowly, or nothing,
//! cannot take every descriptor or hold connections forever.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::response::IntoResponse as _;
use hyper::body::{Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};

use crate::api;
use crate::api::error::ApiError;
use crate::app::{AppState, StartError};
use crate::config::ServerConfig;
use crate::store::executions::CrashPolicy;
use crate::store::now_ms;

/// Descriptors kept out of the connection cap, at least: the store, the artifact
/// cache, outbound requests of executions and the process's own files need some.
const RESERVED_DESCRIPTORS: usize = 256;

/// Why `serve` failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("the server stopped: {0}")]
    Serve(std::io::Error),
}

/// A server running in this process.
pub struct RunningServer {
    /// The address it listens on (the port is real even when 0 was asked).
    pub addr: SocketAddr,
    pub state: AppState,
    /// Connections it holds open at most (the cap after the descriptor limit).
    pub max_connections: usize,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<Result<(), std::io::Error>>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish, and returns.
    pub async fn stop(self) -> Result<(), ServeError> {
        let RunningServer { shutdown, task, .. } = self;
        let _ = shutdown.send(());
        match task.await {
            Ok(result) => result.map_err(ServeError::Serve),
            Err(join) => Err(ServeError::Serve(std::io::Error::other(join))),
        }
    }
}

/// Binds, opens the data directory and starts serving.
pub async fn start(mut config: ServerConfig) -> Result<RunningServer, ServeError> {
    // Before anything opens a descriptor: the default soft limit (often 1,024) is far
    // below what the hard limit allows, and connections count against it.
    let descriptors = crate::process::raise_open_files_limit();
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|error| ServeError::Bind {
            addr: config.listen,
            error,
        })?;
    let addr = listener.local_addr().map_err(|error| ServeError::Bind {
        addr: config.listen,
        error,
    })?;
    config.listen = addr;
    let max_connections = connection_cap(config.max_connections, descriptors);
    let limits = ListenerLimits {
        max_connections,
        header_read_timeout: config.header_read_timeout,
        body_read_timeout: config.body_read_timeout,
    };
    let state = AppState::open(config).await?;
    spawn_background(&state).await?;
    let app = api::router(state.clone()).layer(axum::middleware::from_fn_with_state(
        limits.body_read_timeout,
        body_deadline,
    ));
    let (shutdown, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, app, limits, stopped));
    tracing::info!(%addr, max_connections, "sluice is listening");
    Ok(RunningServer {
        addr,
        state,
        max_connections,
        shutdown,
        task,
    })
}

/// The limits of the accept loop.
#[derive(Debug, Clone, Copy)]
struct ListenerLimits {
    max_connections: usize,
    header_read_timeout: Duration,
    body_read_timeout: Duration,
}

/// The configured cap, lowered to leave room under the soft descriptor limit: one
/// connection is one descriptor, and running out of them fails the store and the
/// executions' outbound requests too, not only new connections.
fn connection_cap(configured: usize, descriptors: Option<u64>) -> usize {
    let Some(descriptors) = descriptors else {
        return configured.max(1);
    };
    let descriptors = usize::try_from(descriptors).unwrap_or(usize::MAX);
    let reserve = RESERVED_DESCRIPTORS.max(descriptors / 4);
    configured.min(descriptors.saturating_sub(reserve)).max(1)
}

/// Accepts connections until `stopped`, each holding a permit of the connection cap
/// (at the cap, accepting waits: new clients queue in the kernel's backlog), served
/// by hyper's HTTP/1 with the header read timeout; then waits for in-flight requests.
async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ListenerLimits,
    mut stopped: oneshot::Receiver<()>,
) -> Result<(), std::io::Error> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    // The timer is what makes hyper enforce the header read timeout at all. It runs
    // from the connection's start and again while a kept-alive connection waits for
    // its next request, so an idle or silent connection is closed too.
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit.map_err(std::io::Error::other)?,
            _ = &mut stopped => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(err) => {
                    // Out of descriptors (or a connection reset before accept): the
                    // pending connection stays in the backlog; try again shortly
                    // instead of spinning.
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stopped => break,
        };
        let _ = stream.set_nodelay(true);
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Gives every request body until `timeout` after its head arrived to arrive whole;
/// a request whose body was cut off for that is answered `408 body-timeout` (and the
/// connection closed), whatever the handler made of the error.
async fn body_deadline(
    axum::extract::State(timeout): axum::extract::State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let timed_out = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + timeout;
    let flag = Arc::clone(&timed_out);
    let request = request.map(|body| {
        Body::new(TimedBody {
            inner: body,
            deadline,
            sleep: None,
            timed_out: flag,
        })
    });
    let response = next.run(request).await;
    if !timed_out.load(Ordering::Acquire) {
        return response;
    }
    let mut response = ApiError::new(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        "body-timeout",
        format!(
            "the request body did not arrive within {} s",
            timeout.as_secs_f64()
        ),
    )
    .into_response();
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}

/// A request body that fails once its deadline passes.
struct TimedBody {
    inner: Body,
    deadline: Instant,
    /// Made on the first read that has to wait.
    sleep: Option<Pin<Box<Sleep>>>,
    timed_out: Arc<AtomicBool>,
}

/// The error a [`TimedBody`] ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimeout;

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let deadline = this.deadline;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.as_mut().poll(cx).is_ready() {
            this.timed_out.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimeout))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Tasks that run beside the API for the life of the server.
async fn spawn_background(state: &AppState) -> Result<(), ServeError> {
    // One process owns an embedded store: whatever it left running when it stopped
    // (crashed, killed) runs again, after a backoff and a bounded number of times:
    // an execution that kills the process on every run must not keep it from coming
    // back up.
    let policy = CrashPolicy {
        max_requeues: i64::from(state.config.max_crash_requeues),
        // At most an hour, so the growing waits stay far from overflowing.
        backoff_ms: i64::try_from(state.config.crash_backoff.as_millis())
            .unwrap_or(i64::MAX)
            .min(3_600_000),
    };
    let done = state
        .store
        .requeue_expired(now_ms(), i64::MAX, &policy)
        .await
        .map_err(|err| ServeError::Start(err.into()))?;
    if done.requeued > 0 {
        tracing::warn!(
            requeued = done.requeued,
            "executions interrupted by the last stop are queued again, after a backoff"
        );
    }
    for id in &done.failed {
        tracing::error!(execution = %id, max_crash_requeues = policy.max_requeues, "execution interrupted by every stop: failed with host-crash-loop");
    }
    crate::worker::spawn(state, state.config.workers.max(1));
    crate::retention::spawn(state);
    crate::scheduler::spawn(state);
    crate::leases::spawn(state);
    crate::oauth::refresh::spawn(state);
    Ok(())
}
