//! Everything a guest can reach: one module per host capability (log, state,
//! connections, config, context, invoke, outbound HTTP, stdio), the [`Capabilities`]
//! bundle an embedder supplies per execution, and the per-store `HostContext`, whose
//! resource table is capped at `http_memory::MAX_HANDLES` live handles.
//!
//! Each capability is a small trait so the host can plug SQLite or PostgreSQL in and
//! tests can use the in-memory implementations found next to the traits.

pub mod config;
pub mod connections;
pub mod context;
pub mod http;
pub(crate) mod http_memory;
pub mod invoke;
pub mod log;
pub mod state;
pub(crate) mod stdio;

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::{HasData, HasSelf, Linker, ResourceTable};
use wasmtime_wasi::cli::WasiCli;
use wasmtime_wasi::clocks::WasiClocks;
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use self::config::{ConfigSource, StaticConfig};
use self::connections::{ConnectionProvider, StaticConnections};
use self::http::{EgressHooks, EgressPolicy, NetworkPolicy};
pub(crate) use self::http_memory::MAX_HANDLES;
use self::http_memory::{HostMemoryCharges, MeteredHttp, MeteredHttpData};
use self::invoke::Invoker;
use self::log::{LogSink, TracingLogSink};
use self::state::{MemoryStateStore, StateStore};
use self::stdio::CapturedOutput;
use crate::limits::{Limits, MemoryLimiter};
use crate::types::ExecutionContext;

/// The capabilities an execution gets. Cloning is cheap (every field is shared).
///
/// The default is self-contained: in-memory state, no connections, no config
/// variables, logs to `tracing`, no outbound HTTP, no invoker.
#[derive(Clone)]
pub struct Capabilities {
    /// The execution's persisted state.
    pub state: Arc<dyn StateStore>,
    /// The instance's connections.
    pub connections: Arc<dyn ConnectionProvider>,
    /// The instance's config variables.
    pub config: Arc<dyn ConfigSource>,
    /// Where the guest's log records go.
    pub log: Arc<dyn LogSink>,
    /// The tenant's allow-list of outbound hosts, by name.
    pub egress: Arc<EgressPolicy>,
    /// The operator's network policy: which addresses outbound requests may reach
    /// (public ones, plus the ranges opened with `--egress-allow-cidr`), the resolver,
    /// and the outbound caps. Set once by the embedder and shared by every execution
    /// (the per-tenant cap counts across them); tenants never change it.
    pub network: Arc<NetworkPolicy>,
    /// Required for code-native flows that call `invoke`; `None` answers those calls
    /// with a fatal error.
    pub invoker: Option<Arc<dyn Invoker>>,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            state: Arc::new(MemoryStateStore::new()),
            connections: Arc::new(StaticConnections::new()),
            config: Arc::new(StaticConfig::new()),
            log: Arc::new(TracingLogSink),
            egress: Arc::new(EgressPolicy::deny_all()),
            network: Arc::clone(&DEFAULT_NETWORK),
            invoker: None,
        }
    }
}

/// The network policy of [`Capabilities::default`]: public addresses only, shared by
/// the whole process so that its per-tenant cap holds across executions.
static DEFAULT_NETWORK: std::sync::LazyLock<Arc<NetworkPolicy>> =
    std::sync::LazyLock::new(|| Arc::new(NetworkPolicy::new()));

/// A host function ended the execution (it traps the guest).
#[derive(Debug, thiserror::Error)]
pub(crate) enum HostTrap {
    #[error("log volume limit of {limit} bytes exceeded")]
    LogLimit { limit: usize },
    #[error("host call limit of {limit} calls exceeded")]
    HostCallLimit { limit: u64 },
    #[error("wall-clock deadline reached")]
    Deadline,
}

/// Captured stdout/stderr per execution, in bytes; the excess is dropped.
const STDIO_CAPTURE_BYTES: usize = 16 << 10;

/// The data of one execution's `Store`: the WASI contexts, the limiter, the
/// capabilities and the counters behind metering.
pub(crate) struct HostContext {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    egress: EgressHooks,
    /// What the `wasi:http` resources in `table` hold, charged to `limiter`.
    http_charges: HostMemoryCharges,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) context: ExecutionContext,
    pub(crate) caps: Capabilities,
    pub(crate) limits: Limits,
    pub(crate) deadline: Instant,
    pub(crate) host_calls: u64,
    /// Log volume charged so far; shared with whatever writes host lines.
    pub(crate) log_budget: self::log::LogBudget,
    pub(crate) stdout: CapturedOutput,
    pub(crate) stderr: CapturedOutput,
}

impl HostContext {
    pub(crate) fn new(
        context: ExecutionContext,
        caps: Capabilities,
        limits: Limits,
        deadline: Instant,
    ) -> Self {
        let log_budget = self::log::LogBudget::new(limits.log_bytes);
        let stdout = CapturedOutput::new(STDIO_CAPTURE_BYTES);
        let stderr = CapturedOutput::new(STDIO_CAPTURE_BYTES);
        // No environment, arguments or preopened directories, and stdin stays empty.
        // Sockets are linked (standard runtimes import them) but every use is refused:
        // TCP, UDP and name lookup are off here, and the builder's address check
        // already denies every address. Outbound traffic goes only through
        // `wasi:http` and the egress policy.
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let egress = EgressHooks::new(
            Arc::clone(&caps.egress),
            Arc::clone(&caps.network),
            Arc::clone(&caps.log),
            &context,
            log_budget.clone(),
        );
        // Every live handle costs host memory the guest's budget does not see in full;
        // a connector needs a few dozen at most (see `http_memory::MAX_HANDLES`), and a
        // full table traps the call that pushes, which the sandbox reports as such.
        let mut table = ResourceTable::new();
        table.set_max_capacity(http_memory::MAX_HANDLES);
        HostContext {
            wasi,
            http: WasiHttpCtx::new(),
            table,
            egress,
            http_charges: HostMemoryCharges::default(),
            limiter: MemoryLimiter::new(limits.memory_bytes),
            context,
            caps,
            limits,
            deadline,
            host_calls: 0,
            log_budget,
            stdout,
            stderr,
        }
    }

    /// Counts one host call; past the limit the guest is stopped.
    pub(crate) fn charge_host_call(&mut self) -> wasmtime::Result<()> {
        self.host_calls += 1;
        if self.host_calls > self.limits.host_calls {
            return Err(wasmtime::Error::new(HostTrap::HostCallLimit {
                limit: self.limits.host_calls,
            }));
        }
        Ok(())
    }
}

impl WasiView for HostContext {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostContext {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.egress,
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}

impl HostContext {
    /// The `wasi:http` view guests call through: wasi-http's own, metered.
    fn metered_http(&mut self) -> MeteredHttp<'_> {
        MeteredHttp {
            view: WasiHttpCtxView {
                hooks: &mut self.egress,
                table: &mut self.table,
                ctx: &mut self.http,
            },
            charges: &mut self.http_charges,
            limiter: &mut self.limiter,
        }
    }
}

impl crate::bindings::wit::Host for HostContext {}

/// `HasData` for the `wasi:io` interfaces, which live in the resource table.
struct HasIo;

impl HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}

/// Links every host function a guest may import, and nothing else. The set matches
/// `validate::ALLOWED_IMPORTS`.
///
/// `wasi:filesystem` and `wasi:sockets` are linked as inert capabilities, because
/// the JavaScript and Python runtimes import them whether or not a guest uses them:
/// with no preopened directory there is no descriptor to open a path from, and the
/// context above refuses every socket. They hold nothing and reach nothing.
pub(crate) fn link(linker: &mut Linker<HostContext>) -> wasmtime::Result<()> {
    use wasmtime_wasi::cli::WasiCliView;
    use wasmtime_wasi::clocks::WasiClocksView;
    use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
    use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, io, random, sockets};
    use wasmtime_wasi::random::WasiRandomView;
    use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView};

    type Host = HostContext;
    let l = linker;
    {
        use crate::bindings::flow_world::sluice::flow::{
            config, connections, context, invoker, log, state, types,
        };
        types::add_to_linker::<Host, HasSelf<Host>>(l, |host| host)?;
        log::add_to_linker::<Host, HasSelf<Host>>(l, |host| host)?;
        state::add_to_linker::<Host, HasSelf<Host>>(l, |host| host)?;
        connections::add_to_linker::<Host, HasSelf<Host>>(l, |host| host)?;
        config::add_to_linker::<Host, HasSelf<Host>>(l, |host| host)?;
        context::add_to_linker::<Host, HasSelf<Host>>(l, |host| host)?;
        invoker::add_to_linker::<Host, HasSelf<Host>>(l, |host| host)?;
    }

    io::error::add_to_linker::<Host, HasIo>(l, |host| &mut host.table)?;
    io::poll::add_to_linker::<Host, HasIo>(l, |host| &mut host.table)?;
    io::streams::add_to_linker::<Host, HasIo>(l, |host| &mut host.table)?;
    clocks::wall_clock::add_to_linker::<Host, WasiClocks>(l, Host::clocks)?;
    clocks::monotonic_clock::add_to_linker::<Host, WasiClocks>(l, Host::clocks)?;
    random::random::add_to_linker::<Host, WasiRandom>(l, Host::random)?;
    random::insecure::add_to_linker::<Host, WasiRandom>(l, Host::random)?;
    random::insecure_seed::add_to_linker::<Host, WasiRandom>(l, Host::random)?;
    cli::exit::add_to_linker::<Host, WasiCli>(l, Host::cli)?;
    cli::environment::add_to_linker::<Host, WasiCli>(l, Host::cli)?;
    cli::stdin::add_to_linker::<Host, WasiCli>(l, Host::cli)?;
    cli::stdout::add_to_linker::<Host, WasiCli>(l, Host::cli)?;
    cli::stderr::add_to_linker::<Host, WasiCli>(l, Host::cli)?;
    cli::terminal_input::add_to_linker::<Host, WasiCli>(l, Host::cli)?;
    cli::terminal_output::add_to_linker::<Host, WasiCli>(l, Host::cli)?;
    cli::terminal_stdin::add_to_linker::<Host, WasiCli>(l, Host::cli)?;
    cli::terminal_stdout::add_to_linker::<Host, WasiCli>(l, Host::cli)?;
    cli::terminal_stderr::add_to_linker::<Host, WasiCli>(l, Host::cli)?;
    filesystem::types::add_to_linker::<Host, WasiFilesystem>(l, Host::filesystem)?;
    filesystem::preopens::add_to_linker::<Host, WasiFilesystem>(l, Host::filesystem)?;
    sockets::network::add_to_linker::<Host, WasiSockets>(
        l,
        &sockets::network::LinkOptions::default(),
        Host::sockets,
    )?;
    sockets::instance_network::add_to_linker::<Host, WasiSockets>(l, Host::sockets)?;
    sockets::tcp::add_to_linker::<Host, WasiSockets>(l, Host::sockets)?;
    sockets::tcp_create_socket::add_to_linker::<Host, WasiSockets>(l, Host::sockets)?;
    sockets::udp::add_to_linker::<Host, WasiSockets>(l, Host::sockets)?;
    sockets::udp_create_socket::add_to_linker::<Host, WasiSockets>(l, Host::sockets)?;
    sockets::ip_name_lookup::add_to_linker::<Host, WasiSockets>(l, Host::sockets)?;
    // `wasi:http` through the metered view, so that what the host holds for the guest
    // counts against its memory budget (`http_memory`).
    {
        use wasmtime_wasi_http::p2::bindings::{LinkOptions, http};
        http::outgoing_handler::add_to_linker::<Host, MeteredHttpData>(l, Host::metered_http)?;
        http::types::add_to_linker::<Host, MeteredHttpData>(
            l,
            &LinkOptions::default().into(),
            Host::metered_http,
        )?;
    }
    Ok(())
}
