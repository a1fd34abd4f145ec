//! Cold start: the latency of one execution in a fresh instance, instantiate + call,
//! of the `echo` action of `examples/hello` with a small JSON input.
//!
//! Variants, measured in one process on one current-thread tokio runtime, interleaved
//! round by round so that machine noise hits them alike:
//!
//! - `sluice (pooling)`: `Runtime::execute` with the pooling allocator, default
//!   `Limits`, default `Capabilities` except a log sink that discards.
//! - `wasmtime floor (pooling)`: the same component on bare wasmtime (see `benches/src/floor.rs`):
//!   new `Store`, `instantiate_async` from an `InstancePre`, call, drop.
//! - `sluice (on-demand)`: as the first, with `AllocatorChoice::OnDemand`, to show what
//!   the pool buys.
//!
//! Run: `cargo bench -p sluice-benches --bench cold_start` (add `-- --quick`, or set
//! `SLUICE_BENCH_QUICK=1`, for a short run). See `benches/README.md`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_benches::floor::Floor;
use sluice_benches::{DiscardLog, Options, Samples, locked_version, machine};
use sluice_runtime::{
    AllocatorChoice, AllocatorKind, Call, Capabilities, Data, ExecutionContext, Limits,
    LoadedComponent, Outcome, Returned, Runtime, RuntimeConfig,
};

const ACTION: &str = "echo";
const INPUT: &str = r#"{"id":42,"name":"cold start"}"#;
/// Execution slots of the Sluice runtimes (and so the size of their pool).
const CONCURRENCY: u32 = 64;
/// Sluice/floor ratio of the medians that the issue sets as the target.
const TARGET_RATIO: f64 = 1.5;
const LOCKFILE: &str = include_str!("../../../Cargo.lock");

/// Sluice with one allocator: a runtime, the component loaded once, and the
/// per-execution arguments built once.
struct Sluice {
    runtime: Runtime,
    component: LoadedComponent,
    capabilities: Capabilities,
    limits: Limits,
}

impl Sluice {
    fn new(bytes: &[u8], allocator: AllocatorChoice) -> Result<Self, String> {
        let config = RuntimeConfig::default()
            .max_concurrency(CONCURRENCY)
            .allocator(allocator);
        let runtime =
            Runtime::new(config).map_err(|err| format!("cannot start the runtime: {err}"))?;
        let component = runtime
            .load(bytes)
            .map_err(|err| format!("cannot load hello.wasm: {err}"))?;
        let capabilities = Capabilities {
            log: Arc::new(DiscardLog),
            ..Capabilities::default()
        };
        Ok(Sluice {
            runtime,
            component,
            capabilities,
            limits: Limits::default(),
        })
    }

    /// One execution, timed from the call of `execute` to its return.
    async fn run(&self) -> Result<Sample, String> {
        let call = Call::Action {
            action: ACTION.to_string(),
            input: INPUT.to_string(),
        };
        let started = Instant::now();
        let report = self
            .runtime
            .execute(
                &self.component,
                call,
                ExecutionContext::default(),
                &self.capabilities,
                &self.limits,
            )
            .await;
        let total = started.elapsed();
        let report = report.map_err(|err| format!("execute failed: {err}"))?;
        match &report.outcome {
            Outcome::Completed {
                result: Returned::Output(output),
            } if matches!(&output.data, Data::Json(text) if text == INPUT) => {}
            other => return Err(format!("unexpected outcome: {other:?}")),
        }
        let metering = &report.metering;
        Ok(Sample {
            total,
            instantiate: metering.instantiate_time,
            setup_and_call: metering.wall_time.saturating_sub(metering.instantiate_time),
            rest: total.saturating_sub(metering.wall_time),
        })
    }
}

/// One execution's latency, split where the variant allows it.
struct Sample {
    total: Duration,
    instantiate: Duration,
    /// Store setup plus the call.
    setup_and_call: Duration,
    /// Everything else: for Sluice the checks, the concurrency gate, the span, the
    /// outcome classification, the report and the store's drop; for the floor the
    /// store's drop.
    rest: Duration,
}

async fn run_floor(floor: &Floor) -> Result<Sample, String> {
    let (output, phases) = floor
        .run()
        .await
        .map_err(|err| format!("floor execution failed: {err:#}"))?;
    if output != INPUT {
        return Err(format!("the floor's echo returned {output:?}"));
    }
    Ok(Sample {
        total: phases.total(),
        instantiate: phases.instantiate,
        setup_and_call: phases.store + phases.call,
        rest: phases.drop,
    })
}

enum Contender {
    Sluice(Sluice),
    Floor(Box<Floor>),
}

struct Variant {
    name: &'static str,
    contender: Contender,
    total: Samples,
    instantiate: Samples,
    setup_and_call: Samples,
    rest: Samples,
    /// Median of each measured round, in µs.
    round_medians: Vec<f64>,
}

impl Variant {
    fn new(name: &'static str, contender: Contender, capacity: usize) -> Self {
        Variant {
            name,
            contender,
            total: Samples::with_capacity(capacity),
            instantiate: Samples::with_capacity(capacity),
            setup_and_call: Samples::with_capacity(capacity),
            rest: Samples::with_capacity(capacity),
            round_medians: Vec::new(),
        }
    }

    async fn run_once(&self) -> Result<Sample, String> {
        match &self.contender {
            Contender::Sluice(sluice) => sluice.run().await,
            Contender::Floor(floor) => run_floor(floor).await,
        }
    }

    async fn warm_up(&self, iterations: usize) -> Result<(), String> {
        for _ in 0..iterations {
            self.run_once().await?;
        }
        Ok(())
    }

    async fn measure(&mut self, iterations: usize) -> Result<(), String> {
        let mut round = Samples::with_capacity(iterations);
        for _ in 0..iterations {
            let sample = self.run_once().await?;
            round.push(sample.total);
            self.total.push(sample.total);
            self.instantiate.push(sample.instantiate);
            self.setup_and_call.push(sample.setup_and_call);
            self.rest.push(sample.rest);
        }
        self.round_medians.push(round.summary().median_us);
        Ok(())
    }
}

fn main() -> ExitCode {
    let options = match Options::from_env() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    match run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("cold_start: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: Options) -> Result<(), String> {
    let path = sluice_runtime::guest_build::example("hello").map_err(|err| err.to_string())?;
    let bytes =
        std::fs::read(&path).map_err(|err| format!("cannot read {}: {err}", path.display()))?;

    eprintln!(
        "compiling {} ({} KiB) for each variant",
        path.display(),
        bytes.len() / 1024
    );
    let pooled = Sluice::new(&bytes, AllocatorChoice::Auto)?;
    let pool_used = pooled.runtime.allocator();
    let on_demand = Sluice::new(&bytes, AllocatorChoice::OnDemand)?;
    let floor = Floor::new(&bytes, ACTION, INPUT)
        .map_err(|err| format!("cannot set up the floor: {err:#}"))?;

    let capacity = options.rounds * options.iterations;
    let mut variants = [
        Variant::new("sluice (pooling)", Contender::Sluice(pooled), capacity),
        Variant::new(
            "wasmtime floor (pooling)",
            Contender::Floor(Box::new(floor)),
            capacity,
        ),
        Variant::new("sluice (on-demand)", Contender::Sluice(on_demand), capacity),
    ];

    let executor = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start tokio: {err}"))?;
    executor.block_on(async {
        eprintln!("warming up: {} iterations per variant", options.warmup);
        for variant in &variants {
            variant.warm_up(options.warmup).await?;
        }
        eprintln!(
            "measuring: {} rounds x {} iterations per variant, interleaved",
            options.rounds, options.iterations
        );
        for round in 0..options.rounds {
            // Rotate who goes first so no variant always follows the same neighbour.
            for offset in 0..variants.len() {
                let index = (round + offset) % variants.len();
                variants[index].measure(options.iterations).await?;
            }
        }
        Ok::<(), String>(())
    })?;

    report(&options, pool_used, &variants);
    Ok(())
}

fn report(options: &Options, pool_used: AllocatorKind, variants: &[Variant]) {
    let wasmtime = locked_version(LOCKFILE, "wasmtime").unwrap_or_else(|| "unknown".into());
    println!();
    println!("cold start: hello.wasm `{ACTION}` with {INPUT}, new instance per execution");
    println!("machine:   {}", machine());
    println!("wasmtime:  {wasmtime}");
    if cfg!(debug_assertions) {
        println!("build:     debug (run `cargo bench` for meaningful numbers)");
    }
    println!(
        "pool:      sluice runtime allocator = {pool_used:?} (max_concurrency {CONCURRENCY}); floor = Pooling (default PoolingAllocationConfig)"
    );
    println!(
        "run:       warm-up {} per variant, then {} interleaved rounds x {} iterations",
        options.warmup, options.rounds, options.iterations
    );
    println!();
    println!(
        "{:<26} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "variant", "iterations", "median µs", "p90 µs", "p99 µs", "mean µs"
    );
    for variant in variants {
        let s = variant.total.summary();
        println!(
            "{:<26} {:>10} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
            variant.name, s.count, s.median_us, s.p90_us, s.p99_us, s.mean_us
        );
    }

    let [sluice, floor, on_demand] = variants else {
        return;
    };
    let ratio = sluice.total.summary().median_us / floor.total.summary().median_us;
    let per_round: Vec<f64> = sluice
        .round_medians
        .iter()
        .zip(&floor.round_medians)
        .map(|(s, f)| s / f)
        .collect();
    let low = per_round.iter().copied().fold(f64::INFINITY, f64::min);
    let high = per_round.iter().copied().fold(0.0, f64::max);
    println!();
    println!(
        "ratio sluice/floor (medians): {ratio:.2}x   target <= {TARGET_RATIO}x: {}   (per-round medians: {low:.2}x .. {high:.2}x)",
        if ratio <= TARGET_RATIO {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "pooling gain (sluice on-demand / sluice pooling, medians): {:.2}x",
        on_demand.total.summary().median_us / sluice.total.summary().median_us
    );

    println!();
    println!("where the time goes (median µs of each part, per execution):");
    println!(
        "{:<26} {:>12} {:>14} {:>10}",
        "variant", "instantiate", "store + call", "rest"
    );
    for variant in variants {
        println!(
            "{:<26} {:>12.1} {:>14.1} {:>10.1}",
            variant.name,
            variant.instantiate.summary().median_us,
            variant.setup_and_call.summary().median_us,
            variant.rest.summary().median_us
        );
    }
    println!(
        "  (sluice: instantiate = Metering::instantiate_time; store + call = wall_time - instantiate_time;\n   \
         rest = execute() - wall_time: checks, gate, span, classification, report, store drop.\n   \
         floor: store + call = Store::new + call; rest = store drop.)"
    );
}
