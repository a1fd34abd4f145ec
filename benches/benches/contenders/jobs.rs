//! The in-process contenders: Sluice (`Runtime::execute`) and the raw-wasmtime floor,
//! both running `examples/hello`'s `echo` (one log line, the input returned) on a fresh
//! instance per execution, the component compiled and pre-instantiated once; and the
//! same job in Sluice written in other languages (issue 14): a TypeScript guest
//! (componentize-js), a Python guest (componentize-py), and an inline code step run by
//! the code engine.

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

/// The code step of the `sluice-code` contender: the suite's job as a user writes it.
const CODE_STEP: &str = r#"(context, stepResults) => { context.logger.info("echo", { bytes: JSON.stringify(stepResults.trigger.results).length }); return stepResults.trigger.results; }"#;

/// Which guest a Sluice contender runs the job in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guest {
    /// `examples/hello` (Rust).
    Rust,
    /// An `echo` action of a TypeScript component.
    TypeScript,
    /// An `echo` action of a Python component.
    Python,
    /// An inline code step in the code engine.
    CodeStep,
}

impl Guest {
    pub fn of(contender: &str) -> Option<Guest> {
        Some(match contender {
            "sluice" => Guest::Rust,
            "sluice-ts" => Guest::TypeScript,
            "sluice-py" => Guest::Python,
            "sluice-code" => Guest::CodeStep,
            _ => return None,
        })
    }

    /// Builds the guest's component (npm or a Python venv the first time); `None` for
    /// the Rust `hello`, which the suite builds as an example.
    fn build(self) -> Result<Option<std::path::PathBuf>, String> {
        use sluice_runtime::guest_build::{code_engine, js, python};
        let guests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("guests");
        let built = match self {
            Guest::Rust => return Ok(None),
            Guest::TypeScript => js::build_js_project(guests.join("echo-ts")),
            Guest::Python => python::build_python_component(guests.join("echo-py")),
            Guest::CodeStep => code_engine::code_engine(),
        };
        built.map(Some).map_err(|err| err.to_string())
    }

    /// The action called and its input.
    fn call(self) -> (String, String) {
        match self {
            Guest::CodeStep => (
                "run".into(),
                serde_json::json!({
                    "code": CODE_STEP,
                    "stepResults": {"trigger": {"results": serde_json::from_str::<Value>(INPUT).unwrap_or_default()}},
                })
                .to_string(),
            ),
            _ => (ACTION.into(), INPUT.into()),
        }
    }
}

/// Sluice with the component loaded and the per-execution arguments built once.
pub struct SluiceJob {
    pub runtime: Runtime,
    pub component: LoadedComponent,
    pub capabilities: Capabilities,
    pub limits: Limits,
    pub action: String,
    pub input: String,
}

impl SluiceJob {
    /// The job in `guest`, whose component is `bytes`.
    pub fn for_guest(bytes: &[u8], guest: Guest) -> Result<Self, String> {
        let (action, input) = guest.call();
        let runtime = Runtime::new(RuntimeConfig::default().max_concurrency(CONCURRENCY))
            .map_err(|err| format!("cannot start the runtime: {err}"))?;
        let component = runtime
            .load(bytes)
            .map_err(|err| format!("cannot load the component: {err}"))?;
        Ok(SluiceJob {
            runtime,
            component,
            capabilities: Capabilities {
                log: Arc::new(DiscardLog),
                ..Capabilities::default()
            },
            limits: Limits::default(),
            action,
            input,
        })
    }

    /// One execution, its output checked.
    pub async fn execute(&self) -> Result<(), String> {
        let report = self
            .runtime
            .execute(
                &self.component,
                Call::Action {
                    action: self.action.clone(),
                    input: self.input.clone(),
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
            } if matches!(&output.data, Data::Json(text) if same_json(text, INPUT)) => Ok(()),
            other => Err(format!("unexpected outcome: {other:?}")),
        }
    }
}

/// Whether two JSON texts hold the same document (guests differ in whitespace).
fn same_json(a: &str, b: &str) -> bool {
    a == b
        || matches!(
            (serde_json::from_str::<Value>(a), serde_json::from_str::<Value>(b)),
            (Ok(a), Ok(b)) if a == b
        )
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
    Sluice(Box<SluiceJob>),
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
    measure_guest(name, protocol, decommit_batch, None)
}

/// [`measure`], with the component of a guest-language contender from `component`.
pub fn measure_guest(
    name: &str,
    protocol: &Protocol,
    decommit_batch: Option<usize>,
    component: Option<&str>,
) -> Result<Value, String> {
    let built = match (component, Guest::of(name)) {
        (Some(path), _) => Some(std::path::PathBuf::from(path)),
        (None, Some(guest)) => guest.build()?,
        (None, None) => None,
    };
    let bytes = match &built {
        Some(path) => {
            std::fs::read(path).map_err(|err| format!("cannot read {}: {err}", path.display()))?
        }
        None => sluice_benches::example_bytes("hello")?,
    };
    let started = Instant::now();
    let job = match Guest::of(name) {
        Some(guest) => Job::Sluice(Box::new(SluiceJob::for_guest(&bytes, guest)?)),
        None => {
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
    let size = format!("{} KiB component", bytes.len().div_ceil(1024));
    let (label, what, version) = match &job {
        Job::Sluice(sluice) => {
            let (label, what) = match Guest::of(name) {
                Some(Guest::TypeScript) => (
                    "Sluice, TypeScript guest (componentize-js)",
                    "Runtime::execute of the TypeScript `echo` (benches/guests/echo-ts, the JS SDK) on a fresh instance, default Limits, discarding log sink",
                ),
                Some(Guest::Python) => (
                    "Sluice, Python guest (componentize-py)",
                    "Runtime::execute of the Python `echo` (benches/guests/echo-py, the Python SDK) on a fresh instance, default Limits, discarding log sink",
                ),
                Some(Guest::CodeStep) => (
                    "Sluice, inline code step (code engine)",
                    "Runtime::execute of the code engine's `run` with the echo step's source and its trigger result on a fresh instance, default Limits, discarding log sink (what the flow engine calls per code step)",
                ),
                _ => (
                    "Sluice (precompiled, warm engine)",
                    "Runtime::execute of hello `echo` on a fresh instance: pooling allocator (max_concurrency 64), default Limits (fuel, epoch deadline, memory limiter, timeout), default capabilities with a discarding log sink",
                ),
            };
            (
                label,
                what,
                format!(
                    "sluice-runtime on wasmtime {wasmtime}, {:?} allocator, {}",
                    sluice.runtime.allocator(),
                    if built.is_some() { &size } else { &hello }
                ),
            )
        }
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
