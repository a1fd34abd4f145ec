//! Flow overhead: what the flow engine adds per step beyond the component call itself.
//!
//! Variants, measured in one process on one current-thread tokio runtime, interleaved
//! round by round so that machine noise hits them alike:
//!
//! - `flow (10 steps)`: one execution of a declarative flow of 10 `hello.echo` steps
//!   (`FlowEngine::run`): the built-in trigger, then 10 steps, each building its input
//!   (steps 2-10 read `id` from the previous step's result), running in its own
//!   sandbox, recording its result, metering and logs.
//! - `direct (10 calls)`: 10 `Runtime::execute` calls of the same action with the same
//!   input, one after the other: the component calls alone.
//!
//! Both use the same runtime (pooling allocator), default `Limits`, and a log sink that
//! discards. Per-step overhead = (median flow - median direct) / 10; the record's own
//! split (execution time minus the sandboxes' time) is printed as a cross-check.
//!
//! Run: `cargo bench -p sluice-benches --bench flow_overhead` (add `-- --quick`, or set
//! `SLUICE_BENCH_QUICK=1`, for a short run).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use sluice_benches::{DiscardLog, Options, Samples, locked_version, machine};
use sluice_runtime::flow::{
    Definition, FlowEngine, MemoryCatalog, Plan, RunEnv, compile, json_request,
};
use sluice_runtime::{
    Call, Capabilities, Data, ExecutionContext, Limits, LoadedComponent, Outcome, Returned,
    Runtime, RuntimeConfig,
};

const STEPS: usize = 10;
const INPUT: &str = r#"{"id":42,"name":"flow step"}"#;
/// Engine overhead per step that the issue sets as the target, in µs.
const TARGET_US: f64 = 50.0;
const CONCURRENCY: u32 = 64;
const LOCKFILE: &str = include_str!("../../Cargo.lock");

/// Ten `hello.echo` steps; each after the first reads `id` from its predecessor.
fn definition() -> String {
    let mut yaml = String::from(
        "definitionVersion: 1\nname: Flow overhead\ncomponents:\n  hello: {version: \"0.1.0\"}\nflows:\n  - key: ten\n    steps:\n",
    );
    for step in 1..=STEPS {
        let id = if step == 1 {
            "42".to_string()
        } else {
            format!("{{type: reference, value: step{}.results.id}}", step - 1)
        };
        yaml.push_str(&format!(
            "      - key: step{step}\n        action: hello.echo\n        inputs: {{id: {id}, name: flow step}}\n"
        ));
    }
    yaml
}

struct Bench {
    runtime: Runtime,
    hello: LoadedComponent,
    engine: FlowEngine,
    plan: Plan,
    env: RunEnv,
}

/// One flow execution: total time and the time spent inside sandboxes.
struct FlowSample {
    total: std::time::Duration,
    engine_us: f64,
}

impl Bench {
    async fn flow(&self) -> Result<FlowSample, String> {
        let started = Instant::now();
        let record = self
            .engine
            .run(
                &self.plan,
                "ten",
                json_request(r#"{"hello":"flow"}"#),
                &self.env,
            )
            .await
            .map_err(|err| err.to_string())?;
        let total = started.elapsed();
        if !record.succeeded() || record.steps.len() != STEPS + 1 {
            return Err(format!("unexpected record: {record:?}"));
        }
        let last = record
            .step(&format!("step{STEPS}"))
            .and_then(|step| step.result_value());
        if last != Some(&serde_json::json!({"id": 42, "name": "flow step"})) {
            return Err(format!("unexpected result: {last:?}"));
        }
        let sandboxes: u64 = record
            .steps
            .iter()
            .flat_map(|step| &step.attempts)
            .map(|attempt| attempt.duration_us)
            .sum();
        Ok(FlowSample {
            total,
            engine_us: record.duration_us.saturating_sub(sandboxes) as f64,
        })
    }

    async fn direct(&self) -> Result<std::time::Duration, String> {
        let started = Instant::now();
        for _ in 0..STEPS {
            let report = self
                .runtime
                .execute(
                    &self.hello,
                    Call::Action {
                        action: "echo".into(),
                        input: INPUT.into(),
                    },
                    ExecutionContext::default(),
                    &self.env.capabilities,
                    &self.env.limits,
                )
                .await
                .map_err(|err| err.to_string())?;
            match &report.outcome {
                Outcome::Completed {
                    result: Returned::Output(output),
                } if matches!(&output.data, Data::Json(text) if text == INPUT) => {}
                other => return Err(format!("unexpected outcome: {other:?}")),
            }
        }
        Ok(started.elapsed())
    }
}

#[derive(Default)]
struct Variant {
    total: Samples,
    engine: Vec<f64>,
    round_medians: Vec<f64>,
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
            eprintln!("flow_overhead: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: Options) -> Result<(), String> {
    let bytes = sluice_benches::example_bytes("hello")?;
    let executor = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start tokio: {err}"))?;
    let runtime = Runtime::new(RuntimeConfig::default().max_concurrency(CONCURRENCY))
        .map_err(|err| format!("cannot start the runtime: {err}"))?;
    let bench = executor.block_on(async {
        let mut catalog = MemoryCatalog::new();
        let entry = catalog
            .add_bytes(&runtime, &bytes, "hello.wasm")
            .await
            .map_err(|err| err.to_string())?;
        let definition = Definition::from_yaml(&definition()).map_err(|err| err.to_string())?;
        let plan = compile(&definition, &catalog).map_err(|err| err.to_string())?;
        Ok::<_, String>(Bench {
            runtime: runtime.clone(),
            hello: entry.component,
            engine: FlowEngine::new(runtime.clone()),
            plan,
            env: RunEnv {
                context: ExecutionContext::default(),
                capabilities: Capabilities {
                    log: Arc::new(DiscardLog),
                    ..Capabilities::default()
                },
                limits: Limits::default(),
                deadline: None,
            },
        })
    })?;

    let capacity = options.rounds * options.iterations;
    let mut flow = Variant {
        total: Samples::with_capacity(capacity),
        ..Variant::default()
    };
    let mut direct = Variant {
        total: Samples::with_capacity(capacity),
        ..Variant::default()
    };
    executor.block_on(async {
        eprintln!("warming up: {} iterations per variant", options.warmup);
        for _ in 0..options.warmup {
            bench.flow().await?;
            bench.direct().await?;
        }
        eprintln!(
            "measuring: {} rounds x {} iterations per variant, interleaved",
            options.rounds, options.iterations
        );
        for round in 0..options.rounds {
            for turn in 0..2 {
                // Alternate who goes first.
                if (round + turn) % 2 == 0 {
                    let mut samples = Samples::with_capacity(options.iterations);
                    for _ in 0..options.iterations {
                        let sample = bench.flow().await?;
                        samples.push(sample.total);
                        flow.total.push(sample.total);
                        flow.engine.push(sample.engine_us);
                    }
                    flow.round_medians.push(samples.summary().median_us);
                } else {
                    let mut samples = Samples::with_capacity(options.iterations);
                    for _ in 0..options.iterations {
                        let elapsed = bench.direct().await?;
                        samples.push(elapsed);
                        direct.total.push(elapsed);
                    }
                    direct.round_medians.push(samples.summary().median_us);
                }
            }
        }
        Ok::<(), String>(())
    })?;
    report(&options, &flow, &direct);
    Ok(())
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

fn report(options: &Options, flow: &Variant, direct: &Variant) {
    let wasmtime = locked_version(LOCKFILE, "wasmtime").unwrap_or_else(|| "unknown".into());
    println!();
    println!(
        "flow overhead: a declarative flow of {STEPS} hello.echo steps vs {STEPS} direct Runtime::execute calls"
    );
    println!("machine:   {}", machine());
    println!("wasmtime:  {wasmtime}");
    if cfg!(debug_assertions) {
        println!("build:     debug (run `cargo bench` for meaningful numbers)");
    }
    println!(
        "run:       warm-up {} per variant, then {} interleaved rounds x {} iterations",
        options.warmup, options.rounds, options.iterations
    );
    println!();
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "variant", "iterations", "median µs", "p90 µs", "p99 µs", "mean µs"
    );
    for (name, variant) in [
        (format!("flow ({STEPS} steps)"), flow),
        (format!("direct ({STEPS} calls)"), direct),
    ] {
        let s = variant.total.summary();
        println!(
            "{:<22} {:>10} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
            name, s.count, s.median_us, s.p90_us, s.p99_us, s.mean_us
        );
    }
    let flow_median = flow.total.summary().median_us;
    let direct_median = direct.total.summary().median_us;
    let per_step = (flow_median - direct_median) / STEPS as f64;
    let per_round: Vec<f64> = flow
        .round_medians
        .iter()
        .zip(&direct.round_medians)
        .map(|(f, d)| (f - d) / STEPS as f64)
        .collect();
    let low = per_round.iter().copied().fold(f64::INFINITY, f64::min);
    let high = per_round.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    println!();
    println!(
        "engine overhead per step (medians): {per_step:.1} µs   target < {TARGET_US} µs: {}   (per-round: {low:.1} .. {high:.1} µs)",
        if per_step < TARGET_US {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "ratio flow/direct (medians): {:.3}x",
        flow_median / direct_median
    );
    println!(
        "cross-check from the record (execution time minus sandbox time, median per step): {:.1} µs",
        median(&flow.engine) / STEPS as f64
    );
}
