//! The server's settings (`sluice serve` flags): where data lives, where it listens,
//! the public URL webhooks are given under, the limits of what clients may send and
//! the state quotas.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sluice_runtime::StateQuota;

/// Settings of one server process.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Holds `sluice.db`, `secret.key` and `artifacts/`.
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// Base of webhook URLs given to tenants (`<public_url>/webhooks/<token>`); the
    /// listening address when not set.
    pub public_url: Option<String>,
    /// Largest component upload, in bytes.
    pub max_component_bytes: usize,
    /// Largest integration definition, in bytes.
    pub max_definition_bytes: usize,
    /// Largest JSON request body of the API, in bytes.
    pub max_json_bytes: usize,
    /// Largest webhook request body, in bytes.
    pub max_webhook_bytes: usize,
    /// How long a synchronous webhook caller waits for the result.
    pub sync_deadline: Duration,
    /// Executions (and their logs and payloads) older than this are deleted.
    pub retention: Duration,
    /// Executions that may run at once (the runtime's pool).
    pub concurrency: u32,
    /// Workers draining the asynchronous queue.
    pub workers: usize,
    /// How long an execution waits for a free sandbox slot (the global concurrency
    /// limit) before it is refused as busy.
    pub busy_wait: Duration,
    /// Webhook requests per second each endpoint (webhook URL) accepts before it
    /// answers 429; 0 turns the limit off.
    pub webhook_rate_limit: u32,
    /// Time limit of an asynchronous execution when its flow sets none.
    pub async_time_limit: Duration,
    /// Time limit of a synchronous execution when its flow sets none.
    pub sync_time_limit: Duration,
    /// How long "a minute" is for retry delays and the FIFO dedupe window. Always 60 s
    /// in production; tests compress time with it instead of mocking the queue.
    pub minute: Duration,
    /// How often the scheduler looks for due schedules.
    pub schedule_tick: Duration,
    /// Private or special-purpose address ranges guests' outbound HTTP may reach
    /// (`--egress-allow-cidr`); none by default.
    pub egress_allow_cidrs: Vec<String>,
    /// How much guest state an instance and a tenant may keep.
    pub state_quota: StateQuota,
    /// Times an execution interrupted by the process stopping is queued again; one
    /// more interruption fails it with `host-crash-loop`.
    pub max_crash_requeues: u32,
    /// Wait before the first such requeue runs (each further one waits 4x longer).
    pub crash_backoff: Duration,
    /// How long a running execution's lease lasts; its run renews it while alive, and
    /// the sweep (`leases`) ends runs whose lease lapsed.
    pub execution_lease: Duration,
    /// Connections held open at once (lowered at start to leave room under the
    /// process's descriptor limit); past it, new connections wait to be accepted.
    pub max_connections: usize,
    /// Time a client has to send a request's head (and an idle kept-alive connection
    /// to start its next request) before the connection is closed.
    pub header_read_timeout: Duration,
    /// Time a request's body has to arrive whole after its head before it is answered
    /// `408 body-timeout`.
    pub body_read_timeout: Duration,
    /// Log records one run of an execution stores; past it (or the byte cap) the
    /// rest are dropped and counted in one last line.
    pub max_execution_log_records: usize,
    /// Log bytes one run stores (each record costs its text plus a fixed overhead).
    pub max_execution_log_bytes: usize,
    /// Step runs one execution may make (every step of every iteration counts): the
    /// engine's cap, and what published definitions are validated against.
    pub max_step_runs: usize,
    /// Where uploaded components are compiled. `sluice serve` sets a worker process
    /// under CPU-time and memory limits; the default, in process and unbounded, is
    /// for tests that embed the server with trusted guests.
    pub compiler: sluice_runtime::Compiler,
    /// Compiles that may run at once on this host.
    pub compile_concurrency: usize,
    /// Compiles one tenant may run at once; a tenant waits for its own slot before a
    /// host slot, so one tenant cannot hold every host slot.
    pub compile_concurrency_per_tenant: usize,
    /// Threads on which one tenant's guest code may run at once; its further
    /// executions take turns among themselves (see `sluice_runtime`'s fair share).
    /// Half the cores by default, at least one, so that no tenant can take every core
    /// (the runtime library's own default, for an embedder, is all of them).
    pub tenant_parallelism: usize,
    /// How long before its expiry an OAuth token is refreshed (at most half its
    /// lifetime before), by the background refresher or before an execution uses it.
    pub oauth_refresh_margin: Duration,
    /// How often the background refresher looks for OAuth tokens due; `None`: never
    /// (tokens are then refreshed only when an execution needs them).
    pub oauth_refresh_every: Option<Duration>,
    /// How long a component upload waits for its compile before it is answered with
    /// an upload to follow (the compile goes on).
    pub upload_wait: Duration,
    /// The code-step engine (a component built by `runtime/code-engine/build.sh`);
    /// without it, definitions with code steps are refused.
    pub code_engine: Option<PathBuf>,
}

impl ServerConfig {
    /// Defaults for a data directory and listening address.
    pub fn new(data_dir: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        ServerConfig {
            data_dir: data_dir.into(),
            listen,
            public_url: None,
            max_component_bytes: 64 << 20,
            max_definition_bytes: 1 << 20,
            max_json_bytes: 4 << 20,
            max_webhook_bytes: 10 << 20,
            sync_deadline: Duration::from_secs(30),
            retention: Duration::from_secs(14 * 24 * 3600),
            concurrency: 256,
            workers: 64,
            busy_wait: Duration::from_secs(5),
            webhook_rate_limit: 50,
            async_time_limit: Duration::from_secs(15 * 60),
            sync_time_limit: Duration::from_secs(30),
            minute: Duration::from_secs(60),
            schedule_tick: Duration::from_secs(1),
            egress_allow_cidrs: Vec::new(),
            state_quota: StateQuota::default(),
            max_crash_requeues: 3,
            crash_backoff: Duration::from_secs(1),
            execution_lease: Duration::from_secs(60),
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_execution_log_records: 10_000,
            max_execution_log_bytes: 2 << 20,
            max_step_runs: sluice_runtime::flow::DEFAULT_MAX_STEP_RUNS,
            compiler: sluice_runtime::Compiler::InProcess,
            compile_concurrency: sluice_runtime::engine::default_compile_concurrency(),
            compile_concurrency_per_tenant: 1,
            tenant_parallelism: sluice_runtime::engine::half_the_cores(),
            oauth_refresh_margin: Duration::from_secs(15 * 60),
            oauth_refresh_every: Some(Duration::from_secs(30)),
            upload_wait: Duration::from_secs(10),
            code_engine: None,
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("sluice.db")
    }

    pub fn artifacts_dir(&self) -> PathBuf {
        self.data_dir.join("artifacts")
    }
}
