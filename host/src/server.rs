//! Starting and stopping the server: bind, open the data directory, start the
//! background tasks, serve the router until shutdown.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api;
use crate::app::{AppState, StartError};
use crate::config::ServerConfig;

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
    let state = AppState::open(config).await?;
    spawn_background(&state).await?;
    let app = api::router(state.clone());
    let (shutdown, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(%addr, "sluice is listening");
    Ok(RunningServer {
        addr,
        state,
        shutdown,
        task,
    })
}

/// Tasks that run beside the API for the life of the server.
async fn spawn_background(state: &AppState) -> Result<(), ServeError> {
    // One process owns an embedded store: whatever it left running when it stopped
    // (crashed, killed) runs again, as a new attempt.
    let requeued = state
        .store
        .requeue_expired(i64::MAX)
        .await
        .map_err(|err| ServeError::Start(err.into()))?;
    if requeued > 0 {
        tracing::warn!(
            requeued,
            "executions interrupted by the last stop are queued again"
        );
    }
    crate::worker::spawn(state, state.config.workers.max(1));
    crate::retention::spawn(state);
    crate::scheduler::spawn(state);
    Ok(())
}
