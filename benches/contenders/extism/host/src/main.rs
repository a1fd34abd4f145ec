//! Extism contender of the cold-start suite (`benches/run.sh`).
//!
//! One execution = `Plugin::new_from_compiled` (a new plugin instance: a new `Store`,
//! Extism's linker and kernel, the `InstancePre` of the plug-in) + one call of `echo`
//! with the suite's JSON input (the plug-in logs one line through Extism's log host
//! function and returns its input) + drop. The plug-in is compiled once, before
//! measuring (`CompiledPlugin`), as Sluice's component is.
//!
//! Extism routes plug-in logs to `tracing`; a subscriber that enables INFO and drops
//! every event is installed, so the log line is really written by the guest and handed
//! to the host (with no subscriber the plug-in would skip it), and discarded there, as
//! Sluice's contender discards it with its log sink.
//!
//! Usage: `extism-contender PLUGIN.wasm --warmup N --samples N --seconds S --threads 1,2
//! --input JSON`. Prints one JSON line on stdout (the same fields as every contender).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use extism::{CompiledPlugin, Manifest, PluginBuilder, Wasm};
use serde_json::json;

const EXTISM_VERSION: &str = "1.30.0";

struct Args {
    plugin: String,
    warmup: usize,
    samples: usize,
    seconds: f64,
    threads: Vec<usize>,
    input: String,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut parsed = Args {
        plugin: String::new(),
        warmup: 200,
        samples: 1000,
        seconds: 1.0,
        threads: vec![1, 2],
        input: r#"{"id":42,"name":"cold start"}"#.to_string(),
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--warmup" => parsed.warmup = number(&value()?)?,
            "--samples" => parsed.samples = number(&value()?)?,
            "--seconds" => {
                parsed.seconds = value()?
                    .parse()
                    .map_err(|_| "--seconds needs a number".to_string())?
            }
            "--threads" => {
                parsed.threads = value()?.split(',').map(number).collect::<Result<_, _>>()?
            }
            "--input" => parsed.input = value()?,
            path if !path.starts_with("--") => parsed.plugin = path.to_string(),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if parsed.plugin.is_empty() {
        return Err("usage: extism-contender PLUGIN.wasm [--warmup N] [--samples N] [--seconds S] [--threads 1,2] [--input JSON]".into());
    }
    Ok(parsed)
}

fn number(text: &str) -> Result<usize, String> {
    text.parse()
        .map_err(|_| format!("expected a number, not `{text}`"))
}

/// A `tracing` subscriber that enables INFO and drops everything: Extism's log host
/// functions then receive and format the line, and it goes nowhere (but is counted).
struct Discard;

/// Events the subscriber received: one per execution shows the log line is written.
static EVENTS: AtomicU64 = AtomicU64::new(0);

impl tracing::Subscriber for Discard {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::INFO
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::INFO)
    }
    fn new_span(&self, _span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _span: &tracing::span::Id, _values: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _span: &tracing::span::Id, _follows: &tracing::span::Id) {}
    fn event(&self, _event: &tracing::Event<'_>) {
        EVENTS.fetch_add(1, Ordering::Relaxed);
    }
    fn enter(&self, _span: &tracing::span::Id) {}
    fn exit(&self, _span: &tracing::span::Id) {}
}

/// One execution: a new plugin instance, one call, drop.
fn execute(compiled: &CompiledPlugin, input: &str) -> Result<(), String> {
    let mut plugin = extism::Plugin::new_from_compiled(compiled)
        .map_err(|err| format!("cannot instantiate the plug-in: {err:#}"))?;
    let output: String = plugin
        .call("echo", input)
        .map_err(|err| format!("echo failed: {err:#}"))?;
    if output != input {
        return Err(format!("echo returned {output:?}"));
    }
    Ok(())
}

fn percentile(sorted: &[u64], pct: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1e3
}

/// Peak resident set size of this process (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("VmHWM:")?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

fn run(args: Args) -> Result<serde_json::Value, String> {
    tracing::subscriber::set_global_default(Discard)
        .map_err(|err| format!("cannot install the tracing subscriber: {err}"))?;
    let bytes =
        std::fs::read(&args.plugin).map_err(|err| format!("cannot read {}: {err}", args.plugin))?;
    let started = Instant::now();
    let manifest = Manifest::new([Wasm::data(bytes)]);
    let compiled = CompiledPlugin::new(
        PluginBuilder::new(manifest)
            .with_wasi(false)
            .with_cache_disabled(),
    )
    .map_err(|err| format!("cannot compile {}: {err:#}", args.plugin))?;
    let compile_ms = started.elapsed().as_secs_f64() * 1e3;
    let compiled = Arc::new(compiled);
    execute(&compiled, &args.input)?;
    if EVENTS.load(Ordering::Relaxed) == 0 {
        return Err("the plug-in wrote no log line".into());
    }

    for _ in 0..args.warmup {
        execute(&compiled, &args.input)?;
    }
    let mut nanos = Vec::with_capacity(args.samples);
    for _ in 0..args.samples {
        let started = Instant::now();
        execute(&compiled, &args.input)?;
        nanos.push(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }
    nanos.sort_unstable();
    let mean = nanos.iter().map(|&n| n as f64).sum::<f64>() / nanos.len().max(1) as f64 / 1e3;

    let mut throughput = Vec::new();
    for &threads in &args.threads {
        let done = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
        let started = Instant::now();
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let compiled = Arc::clone(&compiled);
                let done = Arc::clone(&done);
                let input = args.input.clone();
                std::thread::spawn(move || -> Result<(), String> {
                    while Instant::now() < deadline {
                        execute(&compiled, &input)?;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker
                .join()
                .map_err(|_| "a worker thread panicked".to_string())??;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let executions = done.load(Ordering::Relaxed);
        throughput.push(json!({
            "threads": threads,
            "seconds": elapsed,
            "executions": executions,
            "per_second": executions as f64 / elapsed,
        }));
    }

    Ok(json!({
        "kind": "contender",
        "contender": "extism",
        "label": "Extism, new plugin per call",
        "what": "CompiledPlugin once; per execution Plugin::new_from_compiled + call(\"echo\") + drop (no WASI, no fuel limit, default on-demand allocator)",
        "version": format!("extism {EXTISM_VERSION} (wasmtime 43), extism-pdk 1.4.1 plug-in for wasm32-unknown-unknown"),
        "setup_ms": compile_ms,
        "warmup": args.warmup,
        "samples": nanos.len(),
        "median_us": percentile(&nanos, 50.0),
        "p90_us": percentile(&nanos, 90.0),
        "p99_us": percentile(&nanos, 99.0),
        "mean_us": mean,
        "throughput": throughput,
        "peak_rss_kib": peak_rss_kib(),
        "rss_source": "VmHWM of the contender process",
    }))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(64);
        }
    };
    match run(args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("extism-contender: {message}");
            ExitCode::FAILURE
        }
    }
}
