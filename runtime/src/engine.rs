//! The wasmtime engine Sluice runs every guest on: its configuration, the pooling
//! allocator (with an on-demand fallback), and the epoch ticker thread that turns
//! wall-clock time into interruptions of guest code.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::compile::Compiler;
use crate::error::RuntimeError;

/// Which instance allocator to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllocatorChoice {
    /// Pooling where the address space can be reserved, otherwise on-demand with a warning.
    #[default]
    Auto,
    /// Pooling or an error.
    Pooling,
    /// On-demand allocation (slower instantiation, no address-space reservation).
    OnDemand,
}

/// Cranelift's optimization level (see `benches/RESULTS.md`, "Compiler settings", for
/// what each costs in compile time and memory and gains in run time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptLevel {
    /// No optimizations.
    None,
    /// Optimize for speed (wasmtime's default, and Sluice's).
    #[default]
    Speed,
    /// Optimize for speed and code size.
    SpeedAndSize,
}

impl OptLevel {
    fn wasmtime(self) -> wasmtime::OptLevel {
        match self {
            OptLevel::None => wasmtime::OptLevel::None,
            OptLevel::Speed => wasmtime::OptLevel::Speed,
            OptLevel::SpeedAndSize => wasmtime::OptLevel::SpeedAndSize,
        }
    }
}

/// The allocator a [`Runtime`](crate::Runtime) actually runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AllocatorKind {
    /// The pooling allocator: instances from preallocated, copy-on-write slots.
    Pooling,
    /// On-demand allocation (the pool could not be reserved).
    OnDemand,
}

/// Settings fixed for the life of a [`Runtime`](crate::Runtime).
///
/// Per-execution budgets are in [`Limits`](crate::Limits); this holds what sizes the
/// engine and its pool.
///
/// ```
/// use std::time::Duration;
/// use sluice_runtime::RuntimeConfig;
///
/// let config = RuntimeConfig::default()
///     .max_concurrency(64)
///     .max_memory_bytes(128 << 20)
///     .busy_wait(Duration::from_millis(500));
/// assert_eq!(config.concurrency(), 64);
/// ```
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub(crate) max_concurrency: u32,
    pub(crate) max_memory_bytes: u64,
    pub(crate) allocator: AllocatorChoice,
    pub(crate) epoch_tick: Duration,
    pub(crate) busy_wait: Duration,
    pub(crate) cache_dir: Option<PathBuf>,
    pub(crate) max_wasm_stack: usize,
    pub(crate) max_component_bytes: usize,
    pub(crate) compiler: Compiler,
    pub(crate) compile_concurrency: usize,
    pub(crate) opt_level: OptLevel,
    pub(crate) tenant_parallelism: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_concurrency: 1000,
            max_memory_bytes: 256 << 20,
            allocator: AllocatorChoice::Auto,
            epoch_tick: Duration::from_millis(10),
            busy_wait: Duration::from_secs(5),
            cache_dir: None,
            max_wasm_stack: 512 << 10,
            max_component_bytes: 64 << 20,
            compiler: Compiler::InProcess,
            compile_concurrency: default_compile_concurrency(),
            opt_level: OptLevel::default(),
            tenant_parallelism: default_tenant_parallelism(),
        }
    }
}

impl RuntimeConfig {
    /// Executions that may run at once; the pool is sized for exactly this many.
    pub fn max_concurrency(mut self, executions: u32) -> Self {
        self.max_concurrency = executions.max(1);
        self
    }

    /// The largest memory budget any execution may be given (bytes, summed over all
    /// linear memories of an instance). It also caps each linear memory of the pool.
    pub fn max_memory_bytes(mut self, bytes: u64) -> Self {
        self.max_memory_bytes = bytes.max(64 << 10);
        self
    }

    /// Which instance allocator to use.
    pub fn allocator(mut self, choice: AllocatorChoice) -> Self {
        self.allocator = choice;
        self
    }

    /// Period of the epoch ticker: the granularity of wall-clock deadlines.
    pub fn epoch_tick(mut self, tick: Duration) -> Self {
        self.epoch_tick = tick.max(Duration::from_millis(1));
        self
    }

    /// How long an execution waits for a free slot before failing with "busy".
    pub fn busy_wait(mut self, wait: Duration) -> Self {
        self.busy_wait = wait;
        self
    }

    /// Directory of the persistent artifact cache. Without one, compiled components
    /// live in memory only and are recompiled after a restart.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Maximum wasm stack of a guest, in bytes (default 512 KiB).
    pub fn max_wasm_stack(mut self, bytes: usize) -> Self {
        self.max_wasm_stack = bytes.max(64 << 10);
        self
    }

    /// Largest component binary accepted by `load`, in bytes (default 64 MiB).
    pub fn max_component_bytes(mut self, bytes: usize) -> Self {
        self.max_component_bytes = bytes;
        self
    }

    /// Where components are compiled (default: in this process, unbounded; a host of
    /// untrusted components uses [`Compiler::Worker`]).
    pub fn compiler(mut self, compiler: Compiler) -> Self {
        self.compiler = compiler;
        self
    }

    /// Compilations that may run at once in this runtime; more wait for a slot
    /// (default: half the cores, at least one, so compiles cannot take every core).
    pub fn compile_concurrency(mut self, compiles: usize) -> Self {
        self.compile_concurrency = compiles.max(1);
        self
    }

    /// Cranelift's optimization level (default [`OptLevel::Speed`]). It changes the
    /// compiled code, so artifacts of one level are not loaded by another.
    pub fn opt_level(mut self, level: OptLevel) -> Self {
        self.opt_level = level;
        self
    }

    /// Threads on which one tenant's guest code may run at once (default: the number
    /// of cores). Past it, the tenant's executions take turns among themselves at
    /// each yield, so they cannot fill the executor's run queue ahead of other
    /// tenants; one tenant alone can still use every core.
    pub fn tenant_parallelism(mut self, threads: usize) -> Self {
        self.tenant_parallelism = threads.max(1);
        self
    }

    /// The configured compile concurrency.
    pub fn compiles_at_once(&self) -> usize {
        self.compile_concurrency
    }

    /// The configured concurrency.
    pub fn concurrency(&self) -> u32 {
        self.max_concurrency
    }

    /// The largest per-execution memory budget this runtime accepts, in bytes.
    pub fn memory_ceiling(&self) -> u64 {
        self.max_memory_bytes
    }
}

// Pool shape per component instance. Rust components built by wit-component have a
// main module plus shim modules (3-6 core instances, 1-2 memories, 2-3 tables); these
// caps leave room for composed components while keeping the reservation bounded. The
// pool is sized as concurrency x these caps, so a permit from the concurrency gate
// always finds a free slot.
const CORE_INSTANCES_PER_COMPONENT: u32 = 32;
const MEMORIES_PER_COMPONENT: u32 = 2;
const TABLES_PER_COMPONENT: u32 = 8;

/// Builds the engine, trying the pooling allocator first when asked to.
pub(crate) fn build_engine(
    config: &RuntimeConfig,
) -> Result<(Engine, AllocatorKind), RuntimeError> {
    let base = base_config(config);
    match config.allocator {
        AllocatorChoice::OnDemand => Ok((new_engine(&base)?, AllocatorKind::OnDemand)),
        AllocatorChoice::Pooling => Ok((
            new_engine(&with_pooling(base, config))?,
            AllocatorKind::Pooling,
        )),
        AllocatorChoice::Auto => match Engine::new(&with_pooling(base.clone(), config)) {
            Ok(engine) => Ok((engine, AllocatorKind::Pooling)),
            Err(err) => {
                tracing::warn!(
                    error = %format!("{err:#}"),
                    concurrency = config.max_concurrency,
                    "could not reserve address space for the pooling allocator; \
                     falling back to on-demand allocation (slower instantiation)"
                );
                Ok((new_engine(&base)?, AllocatorKind::OnDemand))
            }
        },
    }
}

fn new_engine(config: &Config) -> Result<Engine, RuntimeError> {
    Engine::new(config).map_err(|err| RuntimeError::Engine(format!("{err:#}")))
}

/// Half the cores, at least one.
pub fn default_compile_concurrency() -> usize {
    half_the_cores()
}

/// Half the cores, at least one: what a host gives one kind of work (compiles) or one
/// tenant (`sluice serve --tenant-parallelism`) so that it cannot take every core.
pub fn half_the_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| (cores.get() / 2).max(1))
}

/// The default [`RuntimeConfig::tenant_parallelism`]: the number of cores.
pub fn default_tenant_parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| cores.get())
}

fn base_config(config: &RuntimeConfig) -> Config {
    compile_config(config.max_wasm_stack, config.opt_level)
}

/// Everything of the engine's configuration that affects compiled code (and so the
/// compatibility hash), without the pooling allocator: the compile worker builds its
/// engine from this alone, so its artifacts load in the server's engine while it
/// reserves no pool address space of its own.
pub(crate) fn compile_config(max_wasm_stack: usize, opt_level: OptLevel) -> Config {
    let mut wasm = Config::new();
    wasm.cranelift_opt_level(opt_level.wasmtime());
    wasm.wasm_component_model(true)
        // Deterministic CPU budget, reported as "fuel used".
        .consume_fuel(true)
        // Wall-clock deadlines: the ticker bumps the epoch, each store sets its deadline.
        .epoch_interruption(true)
        .max_wasm_stack(max_wasm_stack)
        // Host functions run on the same fiber stack as the guest; keep headroom above
        // the wasm stack for them.
        .async_stack_size(max_wasm_stack + (1 << 20))
        .memory_init_cow(true);
    wasm
}

fn with_pooling(mut wasm: Config, config: &RuntimeConfig) -> Config {
    let slots = config.max_concurrency;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .total_memories(slots.saturating_mul(MEMORIES_PER_COMPONENT))
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .total_tables(slots.saturating_mul(TABLES_PER_COMPONENT))
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .total_stacks(slots)
        .max_memory_size(usize::try_from(config.max_memory_bytes).unwrap_or(usize::MAX));
    wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    wasm
}

/// A thread that increments the engine's epoch every tick, until the engine is gone
/// or the ticker is dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub(crate) fn start(engine: &Engine, tick: Duration) -> Result<Self, RuntimeError> {
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let stopped = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("sluice-epoch".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|err| RuntimeError::Engine(format!("cannot start the epoch ticker: {err}")))?;
        Ok(EpochTicker { stop })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
