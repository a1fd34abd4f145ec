//! The truly cold paths of Sluice, each sample in a new process (`cold-child`):
//!
//! - `upload`: the server is up (`Runtime::new` with a cache directory, untimed; the
//!   component's bytes are in memory), then `load(bytes)` (validate, compile, write the
//!   artifact to the cache directory, pre-instantiate) and the first `execute`. Each
//!   sample gets an empty cache directory, so every sample really compiles.
//! - `restart`: a new process finds the artifact an upload left in the cache directory:
//!   `Runtime::new` (engine, pooling allocator, linker, cache directory, epoch ticker),
//!   `load_cached(hash)` (memory-map the artifact, pre-instantiate) and the first
//!   `execute`, all timed from the start of `main`; the process's own start-up (from the
//!   parent's spawn to `main`) is measured too and reported apart.
//!
//! Both use the server's configuration: `RuntimeConfig::default()` (1,000 execution
//! slots, pooling allocator) with a cache directory, default `Limits`, a discarding log.
//!
//! Components: `examples/hello` (`echo`), `examples/github` (`manifest`: it has no
//! action that runs without a GitHub) and the generated multi-megabyte
//! `benches/guests/large` (`echo`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use sluice_benches::DiscardLog;
use sluice_benches::report::Spread;
use sluice_benches::suite::positive;
use sluice_runtime::{
    AllocatorChoice, Call, Capabilities, ContentHash, ExecutionContext, Limits, LoadOrigin,
    LoadedComponent, Outcome, Runtime, RuntimeConfig,
};

use crate::jobs::INPUT;

/// `CLOCK_MONOTONIC` in nanoseconds: comparable across processes, unlike `Instant`.
fn monotonic_ns() -> u64 {
    let time = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(time.tv_sec).unwrap_or(0) * 1_000_000_000
        + u64::try_from(time.tv_nsec).unwrap_or(0)
}

fn ms(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

struct Subject {
    name: &'static str,
    path: PathBuf,
    call: &'static str,
}

fn subjects() -> Result<Vec<Subject>, String> {
    let example =
        |name: &str| sluice_runtime::guest_build::example(name).map_err(|err| err.to_string());
    let large_crate = Path::new(env!("CARGO_MANIFEST_DIR")).join("guests/large");
    eprintln!(
        "building the large component {} (the first time takes minutes)",
        large_crate.display()
    );
    let large = sluice_runtime::guest_build::build_component(&large_crate)
        .map_err(|err| err.to_string())?;
    Ok(vec![
        Subject {
            name: "hello",
            path: example("hello")?,
            call: "echo",
        },
        Subject {
            name: "github",
            path: example("github")?,
            call: "manifest",
        },
        Subject {
            name: "large",
            path: large,
            call: "echo",
        },
    ])
}

/// Runs one `cold-child` and returns its JSON line.
fn spawn_child(args: &[&str]) -> Result<Value, String> {
    let exe = std::env::current_exe().map_err(|err| format!("cannot find myself: {err}"))?;
    let spawned_at = monotonic_ns().to_string();
    let output = Command::new(exe)
        .arg("cold-child")
        .args(args)
        .args(["--spawned-at", &spawned_at])
        .output()
        .map_err(|err| format!("cannot start a cold child: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "cold child {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|line| line.starts_with('{'))
        .ok_or_else(|| format!("cold child {args:?} printed no JSON"))?;
    serde_json::from_str(line).map_err(|err| format!("cold child printed bad JSON: {err}"))
}

fn spread_of(samples: &[Value], key: &str) -> Option<Value> {
    let values: Vec<f64> = samples
        .iter()
        .filter_map(|sample| sample.get(key)?.as_f64())
        .collect();
    (values.len() == samples.len())
        .then(|| Spread::of(&values))
        .flatten()
        .map(Spread::to_json)
}

fn summary(subject: &Subject, size: u64, path: &str, samples: &[Value]) -> Value {
    json!({
        "kind": "cold",
        "component": subject.name,
        "file": subject.path.file_name().map(|name| name.to_string_lossy().into_owned()),
        "size_bytes": size,
        "path": path,
        "call": subject.call,
        "samples": samples.len(),
        "spawn_to_main_ms": spread_of(samples, "spawn_to_main_ms"),
        "runtime_new_ms": spread_of(samples, "runtime_new_ms"),
        "load_ms": spread_of(samples, "load_ms"),
        "execute_ms": spread_of(samples, "execute_ms"),
        "total_ms": spread_of(samples, "total_ms"),
    })
}

/// The parent: for each component, `upload` samples then `restart` samples.
pub fn run(args: Vec<String>) -> Result<(), String> {
    let (mut uploads, mut restarts) = (3, 10);
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--upload-samples" => uploads = positive(&value()?)?,
            "--restart-samples" => restarts = positive(&value()?)?,
            other => return Err(format!("unknown cold option `{other}`")),
        }
    }
    for subject in subjects()? {
        let bytes = std::fs::read(&subject.path)
            .map_err(|err| format!("cannot read {}: {err}", subject.path.display()))?;
        let hash = ContentHash::of(&bytes).to_hex();
        let component = subject.path.to_string_lossy().into_owned();
        eprintln!(
            "cold paths of {} ({} bytes): {uploads} uploads, {restarts} restarts",
            subject.name,
            bytes.len()
        );
        // The first upload's cache directory is the one every restart starts from.
        let first_cache = tempfile::tempdir().map_err(|err| format!("no temp dir: {err}"))?;
        let mut samples = Vec::new();
        for index in 0..uploads {
            let fresh = tempfile::tempdir().map_err(|err| format!("no temp dir: {err}"))?;
            let cache = if index == 0 { &first_cache } else { &fresh };
            let cache = cache.path().to_string_lossy().into_owned();
            samples.push(spawn_child(&[
                "upload",
                "--component",
                &component,
                "--cache",
                &cache,
                "--call",
                subject.call,
            ])?);
        }
        println!(
            "{}",
            summary(&subject, bytes.len() as u64, "upload", &samples)
        );
        let cache = first_cache.path().to_string_lossy().into_owned();
        let mut samples = Vec::new();
        for _ in 0..restarts {
            samples.push(spawn_child(&[
                "restart",
                "--component",
                &component,
                "--cache",
                &cache,
                "--call",
                subject.call,
                "--hash",
                &hash,
            ])?);
        }
        println!(
            "{}",
            summary(&subject, bytes.len() as u64, "restart", &samples)
        );
    }
    Ok(())
}

struct ChildArgs {
    path: String,
    component: PathBuf,
    cache: PathBuf,
    call: String,
    hash: Option<String>,
    spawned_at: Option<u64>,
    /// Diagnosis only (not used by `cold`): another pool size, or no pool.
    max_concurrency: Option<u32>,
    on_demand: bool,
}

fn child_args(args: Vec<String>) -> Result<ChildArgs, String> {
    let mut args = args.into_iter();
    let path = args.next().ok_or("cold-child needs upload or restart")?;
    let mut parsed = ChildArgs {
        path,
        component: PathBuf::new(),
        cache: PathBuf::new(),
        call: "echo".into(),
        hash: None,
        spawned_at: None,
        max_concurrency: None,
        on_demand: false,
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--component" => parsed.component = value()?.into(),
            "--cache" => parsed.cache = value()?.into(),
            "--call" => parsed.call = value()?,
            "--hash" => parsed.hash = Some(value()?),
            "--spawned-at" => {
                parsed.spawned_at = Some(
                    value()?
                        .parse()
                        .map_err(|_| "--spawned-at needs nanoseconds".to_string())?,
                )
            }
            "--max-concurrency" => {
                parsed.max_concurrency = Some(
                    value()?
                        .parse()
                        .map_err(|_| "--max-concurrency needs a number".to_string())?,
                )
            }
            "--on-demand" => parsed.on_demand = true,
            other => return Err(format!("unknown cold-child option `{other}`")),
        }
    }
    Ok(parsed)
}

fn call(name: &str) -> Result<Call, String> {
    match name {
        "manifest" => Ok(Call::Manifest),
        "echo" => Ok(Call::Action {
            action: "echo".into(),
            input: INPUT.into(),
        }),
        other => Err(format!("unknown call `{other}`")),
    }
}

async fn first_execution(
    runtime: &Runtime,
    component: &LoadedComponent,
    call: Call,
) -> Result<(), String> {
    let capabilities = Capabilities {
        log: Arc::new(DiscardLog),
        ..Capabilities::default()
    };
    let report = runtime
        .execute(
            component,
            call,
            ExecutionContext::default(),
            &capabilities,
            &Limits::default(),
        )
        .await
        .map_err(|err| format!("execute failed: {err}"))?;
    match report.outcome {
        Outcome::Completed { .. } => Ok(()),
        other => Err(format!("unexpected outcome: {other:?}")),
    }
}

/// One sample, in a process of its own; prints one JSON line.
pub fn child(args: Vec<String>) -> Result<(), String> {
    let entered = monotonic_ns();
    let started = Instant::now();
    let args = child_args(args)?;
    let spawn_to_main_ms = args
        .spawned_at
        .map(|at| entered.saturating_sub(at) as f64 / 1e6);
    let executor = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start tokio: {err}"))?;
    let mut config = RuntimeConfig::default().cache_dir(&args.cache);
    if let Some(slots) = args.max_concurrency {
        config = config.max_concurrency(slots);
    }
    if args.on_demand {
        config = config.allocator(AllocatorChoice::OnDemand);
    }
    let call = call(&args.call)?;
    let line = match args.path.as_str() {
        "upload" => {
            let runtime =
                Runtime::new(config).map_err(|err| format!("cannot start the runtime: {err}"))?;
            let bytes = std::fs::read(&args.component)
                .map_err(|err| format!("cannot read {}: {err}", args.component.display()))?;
            let loading = Instant::now();
            let component = runtime
                .load(&bytes)
                .map_err(|err| format!("cannot load: {err}"))?;
            let loaded = Instant::now();
            executor.block_on(first_execution(&runtime, &component, call))?;
            let executed = Instant::now();
            if !matches!(component.origin(), LoadOrigin::Compiled { .. }) {
                return Err(format!(
                    "upload was not compiled: {:?} (cache directory not empty?)",
                    component.origin()
                ));
            }
            json!({
                "spawn_to_main_ms": spawn_to_main_ms,
                "load_ms": ms(loaded - loading),
                "execute_ms": ms(executed - loaded),
                "total_ms": ms(executed - loading),
            })
        }
        "restart" => {
            let hash: ContentHash = args
                .hash
                .as_deref()
                .ok_or("restart needs --hash")?
                .parse()
                .map_err(|err| format!("{err}"))?;
            let creating = Instant::now();
            let runtime =
                Runtime::new(config).map_err(|err| format!("cannot start the runtime: {err}"))?;
            let ready = Instant::now();
            let component = runtime
                .load_cached(&hash)
                .map_err(|err| format!("cannot load the cached artifact: {err}"))?;
            let loaded = Instant::now();
            executor.block_on(first_execution(&runtime, &component, call))?;
            let executed = Instant::now();
            if !matches!(component.origin(), LoadOrigin::ArtifactCache { .. }) {
                return Err(format!(
                    "restart did not use the artifact: {:?}",
                    component.origin()
                ));
            }
            json!({
                "spawn_to_main_ms": spawn_to_main_ms,
                "runtime_new_ms": ms(ready - creating),
                "load_ms": ms(loaded - ready),
                "execute_ms": ms(executed - loaded),
                "total_ms": ms(executed - started),
            })
        }
        other => return Err(format!("unknown cold path `{other}`")),
    };
    println!("{line}");
    Ok(())
}
