//! Compiler settings: what Cranelift's optimization level costs when compiling, and
//! gains when running, so that `runtime/src/engine.rs` chooses it knowingly.
//!
//! For each level (`none`, `speed`, `speed_and_size`):
//!
//! - compile time and peak memory of compile bombs (`examples/hostile/compile-bomb`,
//!   scaled so they finish) and of normal guests (`hello`, `github`), each compiled
//!   by Sluice's own compile worker (this binary, re-executed; one thread, as in
//!   production), under generous limits (300 CPU-seconds, 12 GiB) so a limit shows
//!   as such rather than as a crash;
//! - run time of normal guests: `hello.echo` (mostly instantiation) and
//!   `text.replace` over 256 KiB of text (guest compute: JSON, UTF-8, search),
//!   interleaved round by round across the levels.
//!
//! Run: `cargo bench -p sluice-benches --bench compile_settings` (`-- --quick` for a
//! short run with smaller bombs).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use compile_bomb::Shape;
use sluice_benches::{DiscardLog, Options, Samples, example_bytes, machine};
use sluice_runtime::compile::WORKER_REQUEST_ENV;
use sluice_runtime::{
    AllocatorChoice, Call, Capabilities, CompileLimits, Compiler, ExecutionContext, Limits,
    LoadError, OptLevel, Outcome, Runtime, RuntimeConfig, WorkerCommand,
};

const LEVELS: [(OptLevel, &str); 3] = [
    (OptLevel::None, "none"),
    (OptLevel::Speed, "speed"),
    (OptLevel::SpeedAndSize, "speed_and_size"),
];

fn main() -> ExitCode {
    if std::env::var_os(WORKER_REQUEST_ENV).is_some() {
        return sluice_runtime::compile::worker_main();
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("compile_settings: {err}");
            ExitCode::FAILURE
        }
    }
}

fn worker() -> Result<Compiler, String> {
    let exe = std::env::current_exe().map_err(|err| err.to_string())?;
    let limits = CompileLimits::default()
        .cpu_time(Duration::from_secs(300))
        .memory_bytes(12 << 30)
        .wall_time_limit(Duration::from_secs(900));
    Ok(Compiler::Worker(WorkerCommand::new(exe, limits)))
}

fn run() -> Result<(), String> {
    let options = Options::from_env()?;
    let quick = options.rounds < Options::FULL.rounds;
    println!("Compiler settings ({})", machine());
    let hello = example_bytes("hello")?;
    let github = example_bytes("github")?;
    let text = example_bytes("text")?;

    let bombs: Vec<(String, Shape)> = if quick {
        vec![(shape_name(Shape::SMALL), Shape::SMALL)]
    } else {
        [
            Shape {
                locals: 1_000,
                branches: 6_000,
            },
            Shape {
                locals: 2_000,
                branches: 12_000,
            },
            Shape {
                locals: 4_000,
                branches: 24_000,
            },
        ]
        .into_iter()
        .map(|shape| (shape_name(shape), shape))
        .collect()
    };

    println!();
    println!("| component | opt level | size | compile time | peak memory of the worker |");
    println!("|---|---|---|---|---|");
    let mut inputs: Vec<(String, Vec<u8>)> = vec![
        ("hello".to_string(), hello.clone()),
        ("github".to_string(), github),
    ];
    for (name, shape) in &bombs {
        inputs.push((name.clone(), compile_bomb::arm(&hello, *shape)));
    }
    for (name, bytes) in &inputs {
        for (level, level_name) in LEVELS {
            // A fresh runtime per compile: nothing cached between levels.
            let runtime = Runtime::new(
                RuntimeConfig::default()
                    .max_concurrency(1)
                    .allocator(AllocatorChoice::OnDemand)
                    .opt_level(level)
                    .compiler(worker()?),
            )
            .map_err(|err| err.to_string())?;
            let started = Instant::now();
            let row = match runtime.load(bytes) {
                Ok(component) => {
                    let stats = component
                        .compile_stats()
                        .unwrap_or_else(|| unreachable!("a worker compile always has its cost"));
                    format!(
                        "{:.2} s | {} MiB",
                        stats.compile_time.as_secs_f64(),
                        stats.peak_memory_bytes.unwrap_or(0) >> 20
                    )
                }
                Err(LoadError::CompileLimit(kind)) => format!(
                    "over the {kind} (after {:.0} s) | -",
                    started.elapsed().as_secs_f64()
                ),
                Err(err) => format!("error: {err} | -"),
            };
            println!(
                "| {name} | {level_name} | {} KiB | {row} |",
                bytes.len() >> 10
            );
        }
    }

    // Run time, interleaved across levels.
    let executor = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| err.to_string())?;
    let big_text = "gh-13 needs a fix; ".repeat((256 << 10) / 19);
    let replace_input =
        serde_json::json!({"text": big_text, "find": "gh-", "replacement": "GH#"}).to_string();
    let mut runtimes = Vec::new();
    for (level, level_name) in LEVELS {
        let runtime = Runtime::new(RuntimeConfig::default().max_concurrency(4).opt_level(level))
            .map_err(|err| err.to_string())?;
        let hello = runtime.load(&hello).map_err(|err| err.to_string())?;
        let text = runtime.load(&text).map_err(|err| err.to_string())?;
        runtimes.push((
            level_name,
            runtime,
            hello,
            text,
            Samples::with_capacity(1024),
            Samples::with_capacity(1024),
        ));
    }
    let capabilities = Capabilities {
        log: Arc::new(DiscardLog),
        ..Capabilities::default()
    };
    let limits = Limits::default();
    // A text.replace takes milliseconds: far fewer calls than the microsecond
    // benchmarks; the first round warms up.
    let warmup = 1;
    let rounds = warmup + options.rounds;
    let per_round = if quick { 5 } else { 40 };
    for round in 0..rounds {
        for (_, runtime, hello, text, echo_samples, replace_samples) in &mut runtimes {
            for _ in 0..per_round {
                for (component, call, samples) in [
                    (
                        &*hello,
                        Call::Action {
                            action: "echo".into(),
                            input: r#"{"id":42}"#.into(),
                        },
                        &mut *echo_samples,
                    ),
                    (
                        &*text,
                        Call::Action {
                            action: "replace".into(),
                            input: replace_input.clone(),
                        },
                        &mut *replace_samples,
                    ),
                ] {
                    let started = Instant::now();
                    let report = executor
                        .block_on(runtime.execute(
                            component,
                            call,
                            ExecutionContext::default(),
                            &capabilities,
                            &limits,
                        ))
                        .map_err(|err| err.to_string())?;
                    let elapsed = started.elapsed();
                    if !matches!(report.outcome, Outcome::Completed { .. }) {
                        return Err(format!("a run did not complete: {:?}", report.outcome));
                    }
                    if round >= warmup {
                        samples.push(elapsed);
                    }
                }
            }
        }
    }
    println!();
    println!("| opt level | hello.echo median | p99 | text.replace (256 KiB) median | p99 |");
    println!("|---|---|---|---|---|");
    for (level_name, _, _, _, echo, replace) in &runtimes {
        let (echo, replace) = (echo.summary(), replace.summary());
        println!(
            "| {level_name} | {:.1} µs | {:.1} µs | {:.1} µs | {:.1} µs |",
            echo.median_us, echo.p99_us, replace.median_us, replace.p99_us
        );
    }
    Ok(())
}

fn shape_name(shape: Shape) -> String {
    format!("bomb {} locals x {} ifs", shape.locals, shape.branches)
}
