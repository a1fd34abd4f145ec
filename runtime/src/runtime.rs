//! [`Runtime`]: the one entry point of the crate. It owns the engine, the linker, the
//! artifact cache and the concurrency gate, and runs executions.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;
use tracing::Instrument as _;
use wasmtime::Engine;
use wasmtime::component::Linker;

use crate::artifacts::{ArtifactCache, CompileContext, ContentHash, LoadedComponent};
use crate::capabilities::{self, Capabilities, HostContext};
use crate::compile::CompileSlots;
use crate::engine::{AllocatorKind, EpochTicker, RuntimeConfig, build_engine};
use crate::error::{ExecuteError, LoadError, RuntimeError};
use crate::fair_share::FairShare;
use crate::limits::Limits;
use crate::outcome::{Call, ExecutionReport};
use crate::sandbox;
use crate::types::ExecutionContext;

/// Loads components and runs executions, each in a fresh sandboxed instance.
///
/// Cloning is cheap; clones share the engine, cache and concurrency gate.
///
/// ```no_run
/// use sluice_runtime::{Call, Capabilities, ExecutionContext, Limits, Runtime, RuntimeConfig};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let runtime = Runtime::new(RuntimeConfig::default().max_concurrency(16))?;
/// let component = runtime.load(&std::fs::read("hello.wasm")?)?;
/// let report = runtime
///     .execute(
///         &component,
///         Call::Action { action: "echo".into(), input: r#"{"hi":1}"#.into() },
///         ExecutionContext::default(),
///         &Capabilities::default(),
///         &Limits::default(),
///     )
///     .await?;
/// println!("{:?} used {} fuel", report.outcome, report.metering.fuel_used);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<HostContext>,
    cache: ArtifactCache,
    gate: Arc<Semaphore>,
    /// Compiles running at once (`RuntimeConfig::compile_concurrency`).
    compile_slots: CompileSlots,
    /// Each tenant's turns at running guest code (`RuntimeConfig::tenant_parallelism`).
    fair_share: FairShare,
    config: RuntimeConfig,
    allocator: AllocatorKind,
    _ticker: EpochTicker,
}

impl Runtime {
    /// Builds the engine (pooling allocator where possible), links the host
    /// functions, opens the artifact cache and starts the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let (engine, allocator) = build_engine(&config)?;
        let mut linker = Linker::new(&engine);
        capabilities::link(&mut linker).map_err(|err| RuntimeError::Linker(format!("{err:#}")))?;
        let cache = ArtifactCache::new(&engine, config.cache_dir.as_deref())?;
        let ticker = EpochTicker::start(&engine, config.epoch_tick)?;
        let gate = Arc::new(Semaphore::new(config.max_concurrency as usize));
        let compile_slots = CompileSlots::new(config.compile_concurrency);
        let fair_share = FairShare::new(config.tenant_parallelism);
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                linker,
                cache,
                gate,
                compile_slots,
                fair_share,
                config,
                allocator,
                _ticker: ticker,
            }),
        })
    }

    /// The allocator in use (pooling, or on-demand after a fallback).
    pub fn allocator(&self) -> AllocatorKind {
        self.inner.allocator
    }

    /// The configuration the runtime was built with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// The wasmtime engine, for embedders that measure against it.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Execution slots free right now.
    pub fn available_slots(&self) -> usize {
        self.inner.gate.available_permits()
    }

    /// Validates, compiles and pre-instantiates a component; identical bytes are
    /// compiled once, even when loaded concurrently. Compilation runs through the
    /// configured [`Compiler`](crate::Compiler) (a worker process under
    /// [`CompileLimits`](crate::CompileLimits) refuses a component past them with
    /// [`LoadError::CompileLimit`]) and waits for one of the runtime's compile slots.
    /// It can take long: call this from a blocking-friendly context (e.g.
    /// `tokio::task::spawn_blocking`).
    pub fn load(&self, bytes: &[u8]) -> Result<LoadedComponent, LoadError> {
        let limit = self.inner.config.max_component_bytes;
        if bytes.len() > limit {
            return Err(LoadError::TooLarge {
                size: bytes.len(),
                limit,
            });
        }
        let compiler = CompileContext {
            compiler: &self.inner.config.compiler,
            slots: &self.inner.compile_slots,
            max_wasm_stack: self.inner.config.max_wasm_stack,
            opt_level: self.inner.config.opt_level,
        };
        self.inner
            .cache
            .load(&self.inner.engine, &self.inner.linker, &compiler, bytes)
    }

    /// Loads a component compiled earlier (in this process or, with a cache
    /// directory, before a restart) by its hash, without its bytes.
    pub fn load_cached(&self, hash: &ContentHash) -> Result<LoadedComponent, LoadError> {
        self.inner
            .cache
            .load_cached(&self.inner.engine, &self.inner.linker, hash)
    }

    /// Forgets the in-memory pre-instantiation of a component (its artifact stays on
    /// disk). Returns whether it was loaded.
    pub fn unload(&self, hash: &ContentHash) -> bool {
        self.inner.cache.remove(hash)
    }

    /// Runs `call` on a fresh instance of `component`, within `limits`.
    ///
    /// Waits for a free slot at most [`RuntimeConfig::busy_wait`], then fails with
    /// [`ExecuteError::Busy`]. Once started, every ending is an
    /// [`Outcome`](crate::Outcome) in the returned report.
    pub async fn execute(
        &self,
        component: &LoadedComponent,
        call: Call,
        context: ExecutionContext,
        capabilities: &Capabilities,
        limits: &Limits,
    ) -> Result<ExecutionReport, ExecuteError> {
        limits
            .validate(self.inner.config.max_memory_bytes)
            .map_err(ExecuteError::InvalidLimits)?;
        if let Some(world) = call.world()
            && world != component.world()
        {
            return Err(ExecuteError::WrongWorld {
                call: call.name(),
                world: component.world(),
            });
        }
        for (name, document) in call.json_inputs() {
            if let Err(err) = serde_json::from_str::<serde::de::IgnoredAny>(document) {
                return Err(ExecuteError::InvalidCall(format!(
                    "{name} of {} is not JSON: {err}",
                    call.name()
                )));
            }
        }

        let waited = Instant::now();
        let wait = self.inner.config.busy_wait;
        let permit =
            match tokio::time::timeout(wait, Arc::clone(&self.inner.gate).acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                // The semaphore is never closed; treat it like a full pool all the same.
                Ok(Err(_)) | Err(_) => {
                    return Err(ExecuteError::Busy {
                        capacity: self.inner.config.max_concurrency,
                        waited: waited.elapsed(),
                    });
                }
            };

        let span = tracing::info_span!(
            "execution",
            tenant = %context.tenant_id,
            instance = %context.instance_id,
            flow = %context.flow_name,
            execution = %context.execution_id,
            step = context.step.as_deref().unwrap_or(""),
            component = %component.hash().short(),
            call = call.name(),
        );
        let turns = self.inner.fair_share.turns(&context.tenant_id);
        let report = sandbox::execute(
            &self.inner.engine,
            component,
            call,
            context,
            capabilities.clone(),
            limits.clone(),
            sandbox::Sharing {
                epoch_tick: self.inner.config.epoch_tick,
                turns,
            },
        )
        .instrument(span.clone())
        .await?;
        span.in_scope(|| {
            tracing::debug!(
                status = report.outcome.status(),
                fuel = report.metering.fuel_used,
                wall_us = u64::try_from(report.metering.wall_time.as_micros()).unwrap_or(u64::MAX),
                "execution ended"
            );
        });
        // The store (and its pool slot) is gone once `sandbox::execute` returns, so
        // the slot is free again when the permit is.
        drop(permit);
        Ok(report)
    }
}
