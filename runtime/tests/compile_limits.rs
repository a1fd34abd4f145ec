//! Contained compilation through the runtime API: a compile bomb (a real component
//! with a pathological core module appended, `examples/hostile/compile-bomb`) is
//! refused with `LoadError::CompileLimit` by a compile worker under small limits,
//! while a normal component compiles there, records its cost and runs; loads of the
//! same bytes compile once, and the runtime's compile concurrency holds.
//!
//! The worker is this very test binary, re-run with [`WORKER_REQUEST_ENV`] set (see
//! `worker_entry`), so the test needs no other binary: the runtime must not depend on
//! the host crate that has the real `sluice compile-worker`.

mod common;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use common::*;
use compile_bomb::Shape;
use sluice_runtime::compile::WORKER_REQUEST_ENV;
use sluice_runtime::{
    AllocatorChoice, CompileLimitKind, CompileLimits, Compiler, Limits, LoadError, LoadOrigin,
    Outcome, Runtime, RuntimeConfig, WorkerCommand,
};

/// The worker's side: when started by a runtime below, this test binary compiles.
#[test]
fn worker_entry() {
    if std::env::var_os(WORKER_REQUEST_ENV).is_some() {
        let code = sluice_runtime::compile::worker_main();
        std::process::exit(if code == ExitCode::SUCCESS { 0 } else { 1 });
    }
}

fn test_binary_args() -> [&'static str; 4] {
    ["worker_entry", "--exact", "--nocapture", "--test-threads=1"]
}

/// This test binary as the worker, under `limits`.
fn worker(limits: CompileLimits) -> Compiler {
    let mut command = WorkerCommand::new(std::env::current_exe().unwrap(), limits);
    for arg in test_binary_args() {
        command = command.arg(arg);
    }
    Compiler::Worker(command)
}

/// The worker through `sh`, which appends `start` and `end` lines to `log` around
/// it: how many workers ran, and whether any two overlapped.
fn logged_worker(limits: CompileLimits, log: &Path) -> Compiler {
    let script = format!(
        "echo start >> '{log}'; \"$0\" \"$@\"; status=$?; echo end >> '{log}'; exit $status",
        log = log.display()
    );
    let mut command = WorkerCommand::new("/bin/sh", limits)
        .arg("-c")
        .arg(script)
        .arg(std::env::current_exe().unwrap());
    for arg in test_binary_args() {
        command = command.arg(arg);
    }
    Compiler::Worker(command)
}

/// Small limits, as a host that refuses bombs quickly would set them.
fn test_limits() -> CompileLimits {
    CompileLimits::default()
        .cpu_time(Duration::from_secs(2))
        .memory_bytes(1 << 30)
}

fn runtime_with(compiler: Compiler, concurrency: usize, cache: Option<&Path>) -> Runtime {
    let mut config = RuntimeConfig::default()
        .max_concurrency(2)
        .allocator(AllocatorChoice::OnDemand)
        .compiler(compiler)
        .compile_concurrency(concurrency);
    if let Some(dir) = cache {
        config = config.cache_dir(dir);
    }
    Runtime::new(config).expect("runtime")
}

#[test]
fn a_compile_bomb_is_refused_by_the_worker_limits() {
    let bomb = compile_bomb::arm(&guest_bytes("hello"), Shape::SERVER_KILLER);
    let cache = tempfile::tempdir().unwrap();
    let runtime = runtime_with(worker(test_limits()), 1, Some(cache.path()));
    match runtime.load(&bomb) {
        Err(err @ LoadError::CompileLimit(kind)) => {
            let message = err.to_string();
            match kind {
                CompileLimitKind::CpuTime(limit) => {
                    assert_eq!(limit, Duration::from_secs(2));
                    assert!(message.contains("CPU-time limit of 2 s"), "{message}");
                }
                CompileLimitKind::Memory(bytes) => {
                    assert_eq!(bytes, 1 << 30);
                    assert!(message.contains("memory limit of 1024 MiB"), "{message}");
                }
                CompileLimitKind::WallTime(_) => {
                    // Only on a host too busy to give the worker its CPU seconds.
                    assert!(message.contains("wall-clock limit"), "{message}");
                }
            }
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("the compile bomb compiled under 2 CPU-seconds and 1 GiB"),
    }
    // Nothing was stored: no artifact, no index entry, no temporary file left.
    let stored: Vec<PathBuf> = walk(cache.path());
    assert!(stored.is_empty(), "left in the cache: {stored:?}");
}

#[test]
fn a_memory_limit_is_reported_as_memory() {
    // Plenty of CPU time, little memory: the compiler's allocations fail first.
    let bomb = compile_bomb::arm(&guest_bytes("hello"), Shape::SERVER_KILLER);
    let limits = CompileLimits::default()
        .cpu_time(Duration::from_secs(120))
        .memory_bytes(384 << 20);
    let runtime = runtime_with(worker(limits), 1, None);
    match runtime.load(&bomb) {
        Err(LoadError::CompileLimit(CompileLimitKind::Memory(bytes))) => {
            assert_eq!(bytes, 384 << 20)
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("the compile bomb compiled in 384 MiB"),
    }
}

#[test]
fn a_worker_past_its_wall_clock_is_killed() {
    // A "worker" that never answers: only the wall-clock backstop ends it.
    let limits = CompileLimits::default().wall_time_limit(Duration::from_secs(1));
    let compiler = Compiler::Worker(WorkerCommand::new("/bin/sleep", limits).arg("600"));
    let runtime = runtime_with(compiler, 1, None);
    match runtime.load(&guest_bytes("hello")) {
        Err(LoadError::CompileLimit(CompileLimitKind::WallTime(limit))) => {
            assert_eq!(limit, Duration::from_secs(1))
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("`sleep` compiled a component"),
    }
}

#[test]
fn a_missing_worker_is_a_host_error_not_the_components() {
    let compiler = Compiler::Worker(WorkerCommand::new(
        "/nonexistent/sluice-compile-worker",
        test_limits(),
    ));
    let runtime = runtime_with(compiler, 1, None);
    match runtime.load(&guest_bytes("hello")) {
        Err(LoadError::CompileWorker(message)) => {
            assert!(message.contains("cannot start"), "{message}")
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("compiled without a worker"),
    }
}

#[tokio::test]
async fn a_normal_component_compiles_in_the_worker_records_its_cost_and_runs() {
    let cache = tempfile::tempdir().unwrap();
    // A small bomb is a normal component with one extra (small) core module.
    let bytes = compile_bomb::arm(&guest_bytes("hello"), Shape::SMALL);
    let runtime = runtime_with(worker(test_limits()), 1, Some(cache.path()));
    let component = runtime.load(&bytes).expect("compiles in the worker");
    assert!(matches!(component.origin(), LoadOrigin::Compiled { .. }));
    let stats = component.compile_stats().expect("compile stats");
    assert!(stats.compile_time > Duration::ZERO, "{stats:?}");
    let peak = stats.peak_memory_bytes.expect("the worker's peak memory");
    assert!(peak > 1 << 20 && peak < 1 << 30, "{peak}");

    let (caps, _logs) = capabilities();
    let report = run(
        &runtime,
        &component,
        action("echo", r#"{"hello":"world"}"#),
        &caps,
        &Limits::default(),
    )
    .await;
    assert!(
        matches!(report.outcome, Outcome::Completed { .. }),
        "{:?}",
        report.outcome
    );

    // A new runtime on the same cache loads the worker's artifact, with its cost.
    drop((component, runtime));
    let again = runtime_with(worker(test_limits()), 1, Some(cache.path()));
    let reloaded = again.load(&bytes).expect("loads from the cache");
    assert!(
        matches!(reloaded.origin(), LoadOrigin::ArtifactCache { .. }),
        "{:?}",
        reloaded.origin()
    );
    assert_eq!(reloaded.compile_stats(), Some(stats));
}

#[test]
fn concurrent_loads_of_the_same_bytes_compile_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("workers.log");
    let bytes = compile_bomb::arm(
        &guest_bytes("hello"),
        Shape {
            locals: 150,
            branches: 900,
        },
    );
    // Two host slots, so that nothing but the deduplication keeps them apart.
    let runtime = runtime_with(logged_worker(test_limits(), &log), 2, None);
    let loaded: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| runtime.load(&bytes).expect("compiles")))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(loaded.iter().all(|c| c.hash() == loaded[0].hash()));
    let lines = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        lines.lines().filter(|l| *l == "start").count(),
        1,
        "{lines}"
    );
}

#[test]
fn compiles_beyond_the_concurrency_wait_for_a_slot() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("workers.log");
    let hello = guest_bytes("hello");
    // Three different components, so that each needs a compile of its own.
    let components: Vec<Vec<u8>> = (0..3)
        .map(|n| {
            compile_bomb::arm(
                &hello,
                Shape {
                    locals: 100 + n,
                    branches: 600,
                },
            )
        })
        .collect();
    let runtime = runtime_with(logged_worker(test_limits(), &log), 1, None);
    std::thread::scope(|scope| {
        for bytes in &components {
            let runtime = &runtime;
            scope.spawn(move || runtime.load(bytes).expect("compiles"));
        }
    });
    let lines = std::fs::read_to_string(&log).unwrap();
    let sequence: Vec<&str> = lines.lines().collect();
    assert_eq!(
        sequence,
        ["start", "end", "start", "end", "start", "end"],
        "workers overlapped with a compile concurrency of 1"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}
