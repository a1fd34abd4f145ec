//! `sluice serve`: runs the server on its embedded defaults (SQLite in the data
//! directory, nothing else to install) until interrupted, and prints where it listens
//! as one JSON line on stdout.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde_json::json;
use sluice_runtime::StateQuota;

use sluice_runtime::CompileLimits;

use super::byte_size::ByteSize;
use super::exit::ExitStatus;
use crate::config::ServerConfig;
use crate::server;

/// Arguments of `sluice serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory of the database, the secret key and compiled components.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "sluice-data",
        env = "SLUICE_DATA_DIR"
    )]
    pub data_dir: PathBuf,

    /// Address to listen on (port 0 picks a free port; the chosen one is printed).
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8080",
        env = "SLUICE_LISTEN"
    )]
    pub listen: SocketAddr,

    /// Base URL under which webhook URLs are given out (default: http:// and the listen
    /// address).
    #[arg(long, value_name = "URL", env = "SLUICE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Days to keep executions, their logs and payloads.
    #[arg(long, value_name = "DAYS", default_value_t = 14)]
    pub retention_days: u64,

    /// Seconds a synchronous webhook caller waits for the result.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub sync_deadline_secs: u64,

    /// Executions that may run at once.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub concurrency: u32,

    /// Workers draining the asynchronous queue (at most --concurrency).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub workers: usize,

    /// Milliseconds an execution waits for a free slot when --concurrency are running
    /// before it is refused as busy (503 for a synchronous caller; an asynchronous one
    /// is queued again).
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub busy_wait_ms: u64,

    /// Requests per second each webhook URL accepts (in bursts of as many) before
    /// answering 429 with a Retry-After header (0: no limit).
    #[arg(long, value_name = "PER_SECOND", default_value_t = 50)]
    pub webhook_rate_limit: u32,

    /// Time limit, in seconds, of asynchronous executions whose flow sets none.
    #[arg(long, value_name = "SECONDS", default_value_t = 15 * 60)]
    pub async_time_limit_secs: u64,

    /// Time limit, in seconds, of synchronous executions whose flow sets none.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub sync_time_limit_secs: u64,

    /// State one instance may keep (its flows' and its own scopes; also each
    /// integration's shared scope), in bytes of keys plus values; a write past it
    /// gets `state-error.quota-exceeded`.
    #[arg(long, value_name = "BYTES", default_value_t = ByteSize(StateQuota::default().instance_bytes))]
    pub state_quota_instance_bytes: ByteSize,

    /// Keys one instance may keep in state.
    #[arg(long, value_name = "N", default_value_t = StateQuota::default().instance_keys)]
    pub state_quota_instance_keys: u64,

    /// State all of one tenant's instances may keep, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = ByteSize(StateQuota::default().tenant_bytes))]
    pub state_quota_tenant_bytes: ByteSize,

    /// Keys all of one tenant's instances may keep in state.
    #[arg(long, value_name = "N", default_value_t = StateQuota::default().tenant_keys)]
    pub state_quota_tenant_keys: u64,

    /// Let guests' outbound HTTP reach CIDR (e.g. `10.20.0.0/16`, or one address),
    /// a private or special-purpose range that is otherwise refused whatever the
    /// tenants' `allowedHosts` say (loopback, RFC 1918, link-local, CGNAT, ...).
    /// Repeatable. Only the operator can open these; tenants cannot.
    #[arg(long = "egress-allow-cidr", value_name = "CIDR", value_parser = parse_egress_cidr)]
    pub egress_allow_cidr: Vec<String>,
    /// CPU seconds compiling one uploaded component may take (in a worker process);
    /// past them the upload is refused with 422 `compile-limit`.
    #[arg(long, value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub compile_cpu_seconds: u64,

    /// Memory (address space) compiling one component may take: bytes, or a number
    /// with KiB, MiB or GiB; past it the upload is refused with 422 `compile-limit`.
    #[arg(long, value_name = "BYTES", default_value_t = ByteSize(2 << 30))]
    pub compile_memory: ByteSize,

    /// Compiles that may run at once on this host [default: half the cores, at
    /// least 1].
    #[arg(long, value_name = "N")]
    pub compile_concurrency: Option<usize>,

    /// Compiles one tenant may run at once; its further uploads wait for its own
    /// slot, leaving the other host slots to other tenants.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub compile_concurrency_per_tenant: usize,

    /// Threads on which one tenant's guest code may run at once [default: half the
    /// cores, at least 1]. Past it, the tenant's executions take turns among
    /// themselves, so a tenant with many CPU-bound executions cannot queue them all
    /// ahead of the other tenants' requests. A host serving one tenant can raise it
    /// to the number of cores.
    #[arg(long, value_name = "N")]
    pub tenant_parallelism: Option<usize>,

    /// Seconds before its expiry that an OAuth token is refreshed (at most half its
    /// lifetime before), in the background or before an execution uses it.
    #[arg(long, value_name = "SECONDS", default_value_t = 900)]
    pub oauth_refresh_margin_secs: u64,

    /// How often, in milliseconds, the background refresher looks for OAuth tokens
    /// due; 0 turns it off (tokens are then refreshed when an execution needs them).
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    pub oauth_refresh_every_ms: u64,

    /// How long, in milliseconds, a component upload waits for its compile before it
    /// is answered `202 Accepted` with an upload to follow
    /// (`GET /v1/component-uploads/{id}`); the compile goes on either way. A client
    /// that sends `Prefer: respond-async` is answered at once.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub upload_wait_ms: u64,

    /// The engine of inline JavaScript code steps: the component built by
    /// `runtime/code-engine/build.sh`. Without it, a definition with a `code` step is
    /// refused at publish.
    #[arg(long, value_name = "FILE", env = "SLUICE_CODE_ENGINE")]
    pub code_engine: Option<PathBuf>,

    /// Length of "a minute" in milliseconds for retry delays and dedupe windows.
    /// For tests that compress time; leave it alone in production.
    #[arg(long, value_name = "MS", default_value_t = 60_000, hide = true)]
    pub minute_ms: u64,

    /// How often, in milliseconds, the scheduler looks for due schedules.
    #[arg(long, value_name = "MS", default_value_t = 1000, hide = true)]
    pub schedule_tick_ms: u64,

    /// Times an execution interrupted by the server stopping (crash, kill) is queued
    /// again; the next interruption fails it with `host-crash-loop`.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub max_crash_requeues: u32,

    /// Milliseconds before the first run after such an interruption; each further
    /// one waits four times longer (1 s, 4 s, 16 s by default).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub crash_backoff_ms: u64,

    /// Milliseconds a running execution's lease lasts. A live run renews it (every
    /// quarter of it); a run whose lease lapsed is taken for lost (its task died, its
    /// request was abandoned) and ended like a run interrupted by a crash.
    #[arg(long, value_name = "MS", default_value_t = 60_000)]
    pub execution_lease_ms: u64,

    /// Connections held open at once (lowered to stay under the descriptor limit);
    /// beyond it, new connections wait to be accepted.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Milliseconds a client has to send a request's head (or, kept alive, to start
    /// its next request) before its connection is closed.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub header_read_timeout_ms: u64,

    /// Milliseconds a request's body has to arrive whole before the request is
    /// answered 408 (body-timeout).
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    pub body_read_timeout_ms: u64,

    /// Log records one run of an execution stores; the rest are dropped and counted
    /// in one last line.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_execution_log_records: usize,

    /// Log bytes one run of an execution stores (each record costs its text plus 64).
    #[arg(long, value_name = "BYTES", default_value_t = 2 << 20)]
    pub max_execution_log_bytes: usize,

    /// Step runs one execution of a declarative flow may make (every step of every
    /// iteration counts); a published definition with a loop that would run more is
    /// refused.
    #[arg(long, value_name = "N", default_value_t = sluice_runtime::flow::DEFAULT_MAX_STEP_RUNS, value_parser = super::flow::parse_step_runs)]
    pub max_step_runs: usize,
}

impl ServeArgs {
    fn config(&self) -> ServerConfig {
        let mut config = ServerConfig::new(&self.data_dir, self.listen);
        config.public_url = self.public_url.clone();
        config.retention = Duration::from_secs(self.retention_days.max(1) * 24 * 3600);
        config.sync_deadline = Duration::from_secs(self.sync_deadline_secs.max(1));
        config.concurrency = self.concurrency.max(1);
        config.workers = self
            .workers
            .clamp(1, usize::try_from(config.concurrency).unwrap_or(usize::MAX));
        config.webhook_rate_limit = self.webhook_rate_limit;
        config.busy_wait = Duration::from_millis(self.busy_wait_ms);
        config.async_time_limit = Duration::from_secs(self.async_time_limit_secs.max(1));
        config.sync_time_limit = Duration::from_secs(self.sync_time_limit_secs.max(1));
        config.minute = Duration::from_millis(self.minute_ms.max(1));
        config.schedule_tick = Duration::from_millis(self.schedule_tick_ms.max(10));
        config.egress_allow_cidrs = self.egress_allow_cidr.clone();
        config.state_quota = StateQuota {
            instance_bytes: self.state_quota_instance_bytes.bytes(),
            instance_keys: self.state_quota_instance_keys,
            tenant_bytes: self.state_quota_tenant_bytes.bytes(),
            tenant_keys: self.state_quota_tenant_keys,
        };
        config.max_crash_requeues = self.max_crash_requeues;
        config.crash_backoff = Duration::from_millis(self.crash_backoff_ms);
        // At least 100 ms: the heartbeat renews a quarter of the lease in.
        config.execution_lease = Duration::from_millis(self.execution_lease_ms.max(100));
        config.max_connections = self.max_connections.max(1);
        config.header_read_timeout = Duration::from_millis(self.header_read_timeout_ms.max(1));
        config.body_read_timeout = Duration::from_millis(self.body_read_timeout_ms.max(1));
        config.max_execution_log_records = self.max_execution_log_records;
        config.max_execution_log_bytes = self.max_execution_log_bytes;
        config.max_step_runs = self.max_step_runs;
        config.compiler = super::compile_worker::worker(
            CompileLimits::default()
                .cpu_time(Duration::from_secs(self.compile_cpu_seconds))
                .memory_bytes(self.compile_memory.bytes()),
        );
        if let Some(compiles) = self.compile_concurrency {
            config.compile_concurrency = compiles.max(1);
        }
        config.compile_concurrency_per_tenant = self.compile_concurrency_per_tenant.max(1);
        if let Some(threads) = self.tenant_parallelism {
            config.tenant_parallelism = threads.max(1);
        }
        config.oauth_refresh_margin = Duration::from_secs(self.oauth_refresh_margin_secs);
        config.oauth_refresh_every = (self.oauth_refresh_every_ms > 0)
            .then(|| Duration::from_millis(self.oauth_refresh_every_ms.max(10)));
        config.upload_wait = Duration::from_millis(self.upload_wait_ms);
        config.code_engine = self.code_engine.clone();
        config
    }
}

/// Runs the server until SIGINT or SIGTERM.
/// Checks a CIDR now, so a typo is a usage error naming the option.
pub(crate) fn parse_egress_cidr(text: &str) -> Result<String, sluice_runtime::CidrError> {
    sluice_runtime::NetworkPolicy::new().allow_cidr(text)?;
    Ok(text.to_string())
}

pub async fn serve(args: ServeArgs) -> ExitStatus {
    let running = match server::start(args.config()).await {
        Ok(running) => running,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitStatus::Internal;
        }
    };
    // One line for scripts and tests: where to reach the server.
    println!(
        "{}",
        json!({"listening": format!("http://{}", running.addr), "dataDir": args.data_dir, "publicUrl": running.state.public_url()})
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    match running.stop().await {
        Ok(()) => ExitStatus::Success,
        Err(err) => {
            eprintln!("error: {err}");
            ExitStatus::Internal
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
