//! The two in-process contenders: Sluice (`Runtime::execute`) and the raw-wasmtime
//! floor, both running `examples/hello`'s `echo` (one log line, the input returned) on a
//! fresh instance per execution, the component compiled and pre-instantiated once.

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use sluice_benches::floor::Floor;
use sluice_benches::suite::{self, ContenderLine, Protocol};
use sluice_benches::{DiscardLog, locked_version};
use sluice_runtime::{
    Call, Capabilities, Data, ExecutionContext, Limits, LoadedComponent, Outcome, Returned,
    Runtime, RuntimeConfig,
};
use wasmtime::PoolingAllocationConfig;

pub const ACTION: &str = "echo";
/// The suite's job input; every contender uses the same.
pub const INPUT: &str = r#"{"id":42,"name":"cold start"}"#;
/// Execution slots of the measured runtime (the size of its pool), as in `cold_start`.
const CONCURRENCY: u32 = 64;
const LOCKFILE: &str = include_str!("../../../Cargo.lock");

/// Sluice with the component loaded and the per-execution arguments built once.
pub struct SluiceJob {
    pub runtime: Runtime,
    pub component: LoadedComponent,
    pub capabilities: Capabilities,
    pub limits: Limits,
}

impl SluiceJob {
    pub fn new(bytes: &[u8]) -> Result<Self, String> {
        let runtime = Runtime::new(RuntimeConfig::default().max_concurrency(CONCURRENCY))
            .map_err(|err| format!("cannot start the runtime: {err}"))?;
        let component = runtime
            .load(bytes)
            .map_err(|err| format!("cannot load hello.wasm: {err}"))?;
        Ok(SluiceJob {
            runtime,
            component,
            capabilities: Capabilities {
                log: Arc::new(DiscardLog),
                ..Capabilities::default()
            },
            limits: Limits::default(),
        })
    }

    /// One execution, its output checked.
    pub async fn execute(&self) -> Result<(), String> {
        let report = self
            .runtime
            .execute(
                &self.component,
                Call::Action {
                    action: ACTION.to_string(),
                    input: INPUT.to_string(),
                },
                ExecutionContext::default(),
                &self.capabilities,
                &self.limits,
            )
            .await
            .map_err(|err| format!("execute failed: {err}"))?;
        match &report.outcome {
            Outcome::Completed {
                result: Returned::Output(output),
            } if matches!(&output.data, Data::Json(text) if text == INPUT) => Ok(()),
            other => Err(format!("unexpected outcome: {other:?}")),
        }
    }
}

async fn floor_execute(floor: &Floor) -> Result<(), String> {
    let (output, _phases) = floor
        .run()
        .await
        .map_err(|err| format!("floor execution failed: {err:#}"))?;
    if output == INPUT {
        Ok(())
    } else {
        Err(format!("the floor's echo returned {output:?}"))
    }
}

enum Job {
    Sluice(SluiceJob),
    Floor(Box<Floor>),
}

impl Job {
    async fn execute(&self) -> Result<(), String> {
        match self {
            Job::Sluice(job) => job.execute().await,
            Job::Floor(floor) => floor_execute(floor).await,
        }
    }
}

fn executor() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start tokio: {err}"))
}

/// Measures `sluice` or `floor` with `protocol`; returns the contender's JSON line.
/// `decommit_batch` (floor only, an experiment `run.sh` does not make) sets the pool's
/// `decommit_batch_size`.
pub fn measure(
    name: &str,
    protocol: &Protocol,
    decommit_batch: Option<usize>,
) -> Result<Value, String> {
    let bytes = sluice_benches::example_bytes("hello")?;
    let started = Instant::now();
    let job = match name {
        "sluice" => Job::Sluice(SluiceJob::new(&bytes)?),
        _ => {
            let mut pool = PoolingAllocationConfig::default();
            if let Some(batch) = decommit_batch {
                pool.decommit_batch_size(batch);
            }
            Job::Floor(Box::new(
                Floor::with_pool(&bytes, ACTION, INPUT, pool)
                    .map_err(|err| format!("cannot set up the floor: {err:#}"))?,
            ))
        }
    };
    let setup = started.elapsed();

    // Each thread drives executions on its own current-thread executor, one at a time,
    // as the JavaScript and Extism contenders do on theirs.
    let local = executor()?;
    let latency = suite::latency(protocol.warmup, protocol.samples, || {
        local.block_on(job.execute())
    })?;
    drop(local);
    let mut rates = Vec::new();
    for &threads in &protocol.threads {
        rates.push(suite::throughput(threads, protocol.seconds, || {
            let local = executor()?;
            let job = &job;
            Ok(move || local.block_on(job.execute()))
        })?);
    }

    let wasmtime = locked_version(LOCKFILE, "wasmtime").unwrap_or_else(|| "unknown".into());
    let hello = format!("hello.wasm {} KiB", bytes.len().div_ceil(1024));
    let (label, what, version) = match &job {
        Job::Sluice(sluice) => (
            "Sluice (precompiled, warm engine)",
            "Runtime::execute of hello `echo` on a fresh instance: pooling allocator (max_concurrency 64), default Limits (fuel, epoch deadline, memory limiter, timeout), default capabilities with a discarding log sink",
            format!(
                "sluice-runtime on wasmtime {wasmtime}, {:?} allocator, {hello}",
                sluice.runtime.allocator()
            ),
        ),
        Job::Floor(_) => (
            "raw wasmtime floor (InstancePre+pooling)",
            "bare wasmtime, same component: new Store (WasiCtx + WasiHttpCtx) + instantiate_async from an InstancePre + run-action + drop; no fuel, epochs, limiter or capabilities",
            match decommit_batch {
                None => format!("wasmtime {wasmtime}, default PoolingAllocationConfig, {hello}"),
                Some(batch) => format!(
                    "wasmtime {wasmtime}, PoolingAllocationConfig with decommit_batch_size({batch}), {hello}"
                ),
            },
        ),
    };
    Ok(ContenderLine {
        contender: name,
        label,
        what,
        version,
        setup,
        protocol,
        latency,
        rates,
        peak_rss_kib: suite::peak_rss_kib(),
        rss_source: "VmHWM of the contender process",
    }
    .to_json())
}
